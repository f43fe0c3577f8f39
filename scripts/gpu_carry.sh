#!/usr/bin/env bash
# Copies what a build needs beyond libtorch into third_party/carry/ (git-ignored), for a machine
# that has a CUDA libtorch, CMake and a compiler but none of our Debian -dev packages and no network
# (the GPU machines): the header-only libraries (nlohmann-json, CLI11), PCRE2's, zlib's, SQLite's,
# cpp-httplib's and OpenSSL's headers and shared libraries, and GoogleTest's source. CMakeLists.txt looks there when the system has none of them.
# SentencePiece is left out: without it a Llama-2 tokenizer.model is refused with a clear error.
# Run here (Debian 12, after scripts/install_deps.sh); then carry third_party/carry to the GPU
# machine and run scripts/gpu_check.sh there.
set -euo pipefail
cd "$(dirname "$0")/.."
C=third_party/carry
rm -rf "$C" && mkdir -p "$C/include" "$C/lib"
cp -r /usr/include/nlohmann /usr/include/CLI "$C/include/"
cp /usr/include/pcre2.h "$C/include/"
lib=$(readlink -f /usr/lib/x86_64-linux-gnu/libpcre2-8.so)
cp "$lib" "$C/lib/libpcre2-8.so"
cp "$lib" "$C/lib/libpcre2-8.so.0"  # the SONAME the binaries ask for (via their build RPATH)
cp -r /usr/src/googletest "$C/googletest"
cp /usr/include/zlib.h /usr/include/zconf.h "$C/include/"
zlib=$(readlink -f /usr/lib/x86_64-linux-gnu/libz.so)
cp "$zlib" "$C/lib/libz.so"
cp "$zlib" "$C/lib/libz.so.1"
# The labelling server: SQLite, cpp-httplib (Debian's shared library, built with OpenSSL, zlib and brotli)
# and their libraries, under the SONAMEs the binaries ask for.
cp /usr/include/sqlite3.h /usr/include/sqlite3ext.h /usr/include/httplib.h "$C/include/"
cp -r /usr/include/openssl /usr/include/brotli "$C/include/"
cp -r /usr/include/x86_64-linux-gnu/openssl/. "$C/include/openssl/"
for so in libsqlite3.so libcpp-httplib.so libssl.so libcrypto.so libbrotlicommon.so libbrotlidec.so libbrotlienc.so; do
  real=$(readlink -f /usr/lib/x86_64-linux-gnu/$so)
  soname=$(objdump -p "$real" | awk '/SONAME/ {print $2}')
  cp "$real" "$C/lib/$so"
  [ -n "$soname" ] && cp "$real" "$C/lib/$soname"
done
du -sh "$C"
