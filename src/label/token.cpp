#include "label/token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace rlhf::label {

namespace {
std::string to_hex(const unsigned char* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = d[p[i] >> 4];
    s[2 * i + 1] = d[p[i] & 15];
  }
  return s;
}
}  // namespace

std::string random_token() {
  unsigned char b[16];
  size_t got = 0;
  while (got < sizeof b) {
    ssize_t n = ::getrandom(b + got, sizeof b - got, 0);
    if (n < 0 && errno == EINTR) continue;
    RLHF_CHECK(n > 0, "cannot read random bytes for a token: ", std::strerror(errno));
    got += size_t(n);
  }
  return to_hex(b, sizeof b);
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  RLHF_CHECK(EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr) == 1, "SHA-256 failed (OpenSSL)");
  return to_hex(md, n);
}

bool equal_constant_time(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;  // the lengths are public (both are hashes of fixed size)
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace rlhf::label
