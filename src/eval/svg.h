// Small self-contained SVG line / scatter plots for the evaluation report (no scripts, no external
// fonts or styles): axis ticks at 1-2-5 steps, a legend, a distinct colour per series. NaN and inf
// points are skipped and break a line into pieces; empty or single-point series and zero-width
// ranges are drawn without dividing by zero.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace rlhf {

struct PlotSeries {
  std::string name;          // legend entry ("" = none)
  std::vector<double> x, y;  // paired by index; the longer one's extra values are ignored
  bool markers = true;       // a dot at each point
  bool line = true;          // points joined in the order given
};

struct Plot {
  std::string title, x_label, y_label;
  std::vector<PlotSeries> series;
};

// One <svg> element (no XML declaration, so it can be inlined in HTML), `width` x `height` pixels
// with a viewBox so that it scales.
std::string render_svg(const Plot& p, int width = 640, int height = 360);

// Axis ticks about `target` in number at a 1, 2 or 5 x 10^k step, the first <= lo and the last
// >= hi (so an axis drawn from the first to the last holds the data). A zero-width range is widened
// around its value; non-finite bounds give {0, 1}.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

// A tick label: as many decimals as `step` needs ("0.2", "15", "0.05"), "%g"-style for very large
// or very small magnitudes.
std::string format_tick(double v, double step);

// Text for XML / HTML content and attributes: & < > " ' escaped; invalid UTF-8 and control
// characters other than tab, newline and carriage return become U+FFFD.
std::string xml_escape(std::string_view s);

}  // namespace rlhf
