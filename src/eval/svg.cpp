#include "eval/svg.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>

namespace rlhf {

// Helpers in a namespace of their own: the library is compiled as unity batches, where an anonymous
// namespace is shared with the other sources of the batch.
namespace svg_impl {
namespace {

// matplotlib's tab10: distinct, readable on white, familiar to anyone who reads ML plots.
const char* const kColours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr double kCharWidth = 7.3;  // rough width of a character at font-size 12, for layout only

std::string px(double v) {  // a coordinate
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// At most `max_cp` code points, the last one an ellipsis when cut.
std::string utf8_truncate(std::string_view s, size_t max_cp) {
  if (utf8_length(s) <= max_cp) return std::string(s);
  size_t cp = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80 && cp++ == max_cp - 1) break;
  }
  return std::string(s.substr(0, i)) + "\xE2\x80\xA6";
}

struct Range {
  double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
  void add(double v) { lo = std::min(lo, v), hi = std::max(hi, v); }
  bool empty() const { return !(lo <= hi); }
  // The axis: the data and a 5% margin each side, so no point sits on the frame; a zero-width
  // range is widened around its value.
  Range padded() const {
    const double span = hi - lo;
    double pad = 0.05 * span;
    if (span == 0 || span < 1e-12 * std::max(std::abs(lo), std::abs(hi))) pad = lo == 0 ? 1.0 : 0.1 * std::abs(lo);
    if (!std::isfinite(lo - pad) || !std::isfinite(hi + pad)) pad = 0;
    return {lo - pad, hi + pad};
  }
};

// The ticks of nice_ticks that fall on the axis, and their step.
std::vector<double> axis_ticks(const Range& r, int target, double* step) {
  const std::vector<double> all = nice_ticks(r.lo, r.hi, target);
  *step = all.size() > 1 ? all[1] - all[0] : 1.0;
  std::vector<double> in;
  const double eps = 1e-9 * *step;
  for (double v : all)
    if (v >= r.lo - eps && v <= r.hi + eps) in.push_back(v);
  return in;
}


std::string render(const Plot& p, int width, int height) {
  width = std::max(width, 160);
  height = std::max(height, 120);

  // 1. The data range over the finite points of all series.
  Range xr, yr;
  for (const auto& s : p.series) {
    const size_t n = std::min(s.x.size(), s.y.size());
    for (size_t i = 0; i < n; ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) xr.add(s.x[i]), yr.add(s.y[i]);
  }
  const bool no_data = xr.empty();
  if (no_data) xr = {0.0, 1.0}, yr = {0.0, 1.0};
  else xr = xr.padded(), yr = yr.padded();
  if (!(xr.hi > xr.lo)) xr.lo -= 1, xr.hi += 1;  // an overflowing range; never divide by zero
  if (!(yr.hi > yr.lo)) yr.lo -= 1, yr.hi += 1;

  // 2. Layout: title on top, x ticks and label below, y ticks and label left, legend right.
  size_t legend_chars = 0;
  for (const auto& s : p.series) legend_chars = std::max(legend_chars, utf8_length(s.name));
  legend_chars = std::min<size_t>(legend_chars, 28);
  const double legend_w = legend_chars ? std::min(40 + kCharWidth * legend_chars, width * 0.4) : 0.0;
  const size_t legend_fit = legend_chars ? static_cast<size_t>(std::max(1.0, (legend_w - 40) / kCharWidth)) : 0;
  const double top = p.title.empty() ? 14 : 34;
  const double bottom = p.x_label.empty() ? 28 : 48;
  const double ph = std::max(20.0, height - top - bottom);
  double ystep = 1, xstep = 1;
  const std::vector<double> yt = axis_ticks(yr, std::clamp(static_cast<int>(ph / 50), 2, 8), &ystep);
  size_t ylabel_chars = 1;
  for (double v : yt) ylabel_chars = std::max(ylabel_chars, format_tick(v, ystep).size());
  const double left = 12 + kCharWidth * ylabel_chars + (p.y_label.empty() ? 0 : 20);
  const double right = 14 + legend_w;
  const double pw = std::max(20.0, width - left - right);
  const std::vector<double> xt = axis_ticks(xr, std::clamp(static_cast<int>(pw / 90), 2, 10), &xstep);

  const double x0 = xr.lo, x1 = xr.hi, y0 = yr.lo, y1 = yr.hi;
  auto sx = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
  auto sy = [&](double y) { return top + ph - (y - y0) / (y1 - y0) * ph; };

  std::string o;
  o.reserve(4096);
  const std::string W = std::to_string(width), H = std::to_string(height);
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + W + "\" height=\"" + H + "\" viewBox=\"0 0 " + W +
       " " + H + "\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\" role=\"img\" aria-label=\"" +
       xml_escape(p.title.empty() ? "plot" : p.title) + "\">\n";
  o += "<rect width=\"" + W + "\" height=\"" + H + "\" fill=\"#ffffff\"/>\n";
  if (!p.title.empty())
    o += "<text x=\"" + px(width / 2.0) + "\" y=\"21\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">" +
         xml_escape(p.title) + "</text>\n";

  // 3. Grid, ticks and labels.
  o += "<g stroke=\"#e6e6e6\" stroke-width=\"1\">\n";
  for (double v : xt) o += "<line x1=\"" + px(sx(v)) + "\" y1=\"" + px(top) + "\" x2=\"" + px(sx(v)) + "\" y2=\"" + px(top + ph) + "\"/>\n";
  for (double v : yt) o += "<line x1=\"" + px(left) + "\" y1=\"" + px(sy(v)) + "\" x2=\"" + px(left + pw) + "\" y2=\"" + px(sy(v)) + "\"/>\n";
  o += "</g>\n<g fill=\"#444444\">\n";
  for (double v : xt)
    o += "<text x=\"" + px(sx(v)) + "\" y=\"" + px(top + ph + 16) + "\" text-anchor=\"middle\">" + format_tick(v, xstep) + "</text>\n";
  for (double v : yt)
    o += "<text x=\"" + px(left - 6) + "\" y=\"" + px(sy(v)) + "\" dy=\"0.35em\" text-anchor=\"end\">" + format_tick(v, ystep) + "</text>\n";
  o += "</g>\n";
  o += "<rect x=\"" + px(left) + "\" y=\"" + px(top) + "\" width=\"" + px(pw) + "\" height=\"" + px(ph) +
       "\" fill=\"none\" stroke=\"#999999\"/>\n";
  if (!p.x_label.empty())
    o += "<text x=\"" + px(left + pw / 2) + "\" y=\"" + px(height - 10.0) + "\" text-anchor=\"middle\">" + xml_escape(p.x_label) + "</text>\n";
  if (!p.y_label.empty())
    o += "<text transform=\"translate(16," + px(top + ph / 2) + ") rotate(-90)\" text-anchor=\"middle\">" + xml_escape(p.y_label) + "</text>\n";
  if (no_data)
    o += "<text x=\"" + px(left + pw / 2) + "\" y=\"" + px(top + ph / 2) + "\" text-anchor=\"middle\" fill=\"#999999\">no data</text>\n";

  // 4. The series: a path per run of finite points (a NaN breaks the line), dots at the points.
  for (size_t si = 0; si < p.series.size(); ++si) {
    const PlotSeries& s = p.series[si];
    const std::string colour = kColours[si % std::size(kColours)];
    std::vector<std::vector<std::pair<double, double>>> runs(1);
    const size_t n = std::min(s.x.size(), s.y.size());
    for (size_t i = 0; i < n; ++i) {
      const double X = sx(s.x[i]), Y = sy(s.y[i]);
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i]) && std::isfinite(X) && std::isfinite(Y)) {
        runs.back().emplace_back(X, Y);
      } else if (!runs.back().empty()) {
        runs.emplace_back();
      }
    }
    std::string d, dots;
    const std::string r = s.line ? "3" : "4";
    for (const auto& run : runs) {
      if (s.line && run.size() >= 2) {
        for (size_t i = 0; i < run.size(); ++i) d += (i ? " L" : (d.empty() ? "M" : " M")) + px(run[i].first) + " " + px(run[i].second);
      }
      // Dots where asked for, and for lone points a line alone would not show.
      if (s.markers || run.size() == 1 || !s.line)
        for (const auto& [X, Y] : run) dots += "<circle cx=\"" + px(X) + "\" cy=\"" + px(Y) + "\" r=\"" + r + "\"/>";
    }
    o += "<g class=\"series\" fill=\"" + colour + "\" stroke=\"" + colour + "\">";
    if (!s.name.empty()) o += "<title>" + xml_escape(s.name) + "</title>";
    if (!d.empty()) o += "<path d=\"" + d + "\" fill=\"none\" stroke-width=\"1.8\" stroke-linejoin=\"round\"/>";
    if (!dots.empty()) o += "<g stroke=\"none\">" + dots + "</g>";
    o += "</g>\n";
  }

  // 5. Legend.
  if (legend_chars) {
    const double lx = left + pw + 12;
    double ly = top + 10;
    for (size_t si = 0; si < p.series.size(); ++si) {
      const PlotSeries& s = p.series[si];
      if (s.name.empty()) continue;
      const std::string colour = kColours[si % std::size(kColours)];
      if (s.line)
        o += "<line x1=\"" + px(lx) + "\" y1=\"" + px(ly) + "\" x2=\"" + px(lx + 22) + "\" y2=\"" + px(ly) +
             "\" stroke=\"" + colour + "\" stroke-width=\"2\"/>";
      if (s.markers || !s.line) o += "<circle cx=\"" + px(lx + 11) + "\" cy=\"" + px(ly) + "\" r=\"3\" fill=\"" + colour + "\"/>";
      o += "<text x=\"" + px(lx + 28) + "\" y=\"" + px(ly) + "\" dy=\"0.35em\">" + xml_escape(utf8_truncate(s.name, legend_fit)) + "</text>\n";
      ly += 18;
    }
  }
  o += "</svg>";
  return o;
}
}  // namespace
}  // namespace svg_impl

std::string xml_escape(std::string_view s) {
  static const char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#39;"; break;
        default:
          if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') out += kReplacement;
          else out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    // A multi-byte sequence: copied when it is valid UTF-8 (no overlong forms, no surrogates).
    size_t len = (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    uint32_t cp = len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; ok && k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      ok = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (ok && len == 3) ok = cp >= 0x800 && !(cp >= 0xD800 && cp <= 0xDFFF);
    if (ok && len == 4) ok = cp >= 0x10000 && cp <= 0x10FFFF;
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += kReplacement;
      ++i;
    }
  }
  return out;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {0.0, 1.0};
  if (lo > hi) std::swap(lo, hi);
  if (hi == lo || hi - lo < 1e-12 * std::max(std::abs(lo), std::abs(hi))) {
    const double pad = lo == 0 ? 1.0 : 0.1 * std::abs(lo);
    lo -= pad, hi += pad;
  }
  target = std::max(target, 2);
  const double raw = (hi - lo) / target;
  if (!std::isfinite(raw) || raw <= 0) return {lo, hi};
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double r = raw / mag;
  const double step = (r < 1.5 ? 1.0 : r < 3.0 ? 2.0 : r < 7.0 ? 5.0 : 10.0) * mag;
  const double i0 = std::floor(lo / step + 1e-9), i1 = std::ceil(hi / step - 1e-9);
  if (!(step > 0) || !std::isfinite(i0) || !std::isfinite(i1) || i1 - i0 > 1000 || i1 <= i0) return {lo, hi};
  std::vector<double> ticks;
  const int n = static_cast<int>(i1 - i0);
  for (int k = 0; k <= n; ++k) {
    double v = (i0 + k) * step;
    if (std::abs(v) < step * 1e-9) v = 0.0;  // no "-0", no 1e-17
    ticks.push_back(v);
  }
  return ticks;
}

std::string format_tick(double v, double step) {
  if (!std::isfinite(v)) return "";
  step = std::abs(step);
  if (std::abs(v) < step * 1e-9) v = 0.0;
  const int decimals = (step >= 1 || !(step > 0)) ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  char b[48];
  if (std::abs(v) >= 1e9 || decimals > 8) std::snprintf(b, sizeof b, "%.4g", v);
  else std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

std::string render_svg(const Plot& p, int width, int height) { return svg_impl::render(p, width, height); }

}  // namespace rlhf
