// SIGINT / SIGTERM handling for long jobs: the first signal asks the job to stop at the next safe
// point (trainers save a checkpoint there and exit); a second one ends the process at once.
#pragma once

namespace rlhf {

void install_stop_handlers();
bool stop_requested();
// Which signal asked (for the exit message and code), 0 if none.
int stop_signal();
// Tests: pretend a stop was (not) requested.
void set_stop_requested(bool requested);

}  // namespace rlhf
