// Hand-written SVG line charts: small, valid XML, readable in any browser.
#include "pyramidclip/eval/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace pc {
namespace {

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// Tableau-10: distinguishable, colour-blind friendlier than pure hues.
const char* const kColours[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) hi = lo + 1;
  const double raw = (hi - lo) / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> ticks;
  const double first = std::floor(lo / step);
  for (int i = 0;; ++i) {  // index times step: no accumulated rounding
    const double t = (first + i) * step;
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
    if (t >= hi - step * 1e-9) break;
  }
  if (ticks.size() < 2) ticks.push_back(ticks.back() + step);
  return ticks;
}

std::string tick_label(double v) {
  char buf[32];
  const double a = std::abs(v);
  const char* suffix = "";
  double shown = v;
  if (a >= 1e9) shown = v / 1e9, suffix = "G";
  else if (a >= 1e6) shown = v / 1e6, suffix = "M";
  else if (a >= 1e3) shown = v / 1e3, suffix = "k";
  std::snprintf(buf, sizeof buf, "%.4g%s", shown, suffix);
  return buf;
}

std::string svg_line_chart(const std::vector<PlotSeries>& series, const PlotOptions& opt) {
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const auto& s : series)
    for (const auto& [x, y] : s.points) {
      x0 = std::min(x0, x), x1 = std::max(x1, x);
      y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  if (!std::isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (opt.y_from_zero) y0 = std::min(y0, 0.0);
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 <= y0) y1 = y0 + 1;
  const std::vector<double> xt = nice_ticks(x0, x1), yt = nice_ticks(y0, y1);
  x0 = std::min(x0, xt.front()), x1 = std::max(x1, xt.back());
  y0 = std::min(y0, yt.front()), y1 = std::max(y1, yt.back());

  const double left = 64, right = 20 + 150 /* legend */, top = 36, bottom = 52;
  const double pw = opt.width - left - right, ph = opt.height - top - bottom;
  auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return top + ph - (y - y0) / (y1 - y0) * ph; };

  std::string o = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  o += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(opt.width) + "\" height=\"" +
       std::to_string(opt.height) + "\" viewBox=\"0 0 " + std::to_string(opt.width) + " " +
       std::to_string(opt.height) + "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  o += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o += "<text x=\"" + num(left + pw / 2) + "\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">" +
       xml_escape(opt.title) + "</text>\n";
  // grid and ticks
  for (double t : yt) {
    const std::string y = num(py(t));
    o += "<line x1=\"" + num(left) + "\" y1=\"" + y + "\" x2=\"" + num(left + pw) + "\" y2=\"" + y +
         "\" stroke=\"#e5e5e5\"/>\n";
    o += "<text x=\"" + num(left - 6) + "\" y=\"" + y + "\" text-anchor=\"end\" dominant-baseline=\"middle\">" +
         tick_label(t) + "</text>\n";
  }
  for (double t : xt) {
    const std::string x = num(px(t));
    o += "<line x1=\"" + x + "\" y1=\"" + num(top + ph) + "\" x2=\"" + x + "\" y2=\"" + num(top + ph + 5) +
         "\" stroke=\"black\"/>\n";
    o += "<text x=\"" + x + "\" y=\"" + num(top + ph + 18) + "\" text-anchor=\"middle\">" + tick_label(t) +
         "</text>\n";
  }
  o += "<path d=\"M" + num(left) + "," + num(top) + " V" + num(top + ph) + " H" + num(left + pw) +
       "\" fill=\"none\" stroke=\"black\"/>\n";  // axes (a path: polylines are the series only)
  o += "<text x=\"" + num(left + pw / 2) + "\" y=\"" + num(opt.height - 10.0) + "\" text-anchor=\"middle\">" +
       xml_escape(opt.x_label) + "</text>\n";
  o += "<text transform=\"translate(16," + num(top + ph / 2) + ") rotate(-90)\" text-anchor=\"middle\">" +
       xml_escape(opt.y_label) + "</text>\n";
  // series and legend
  for (size_t i = 0; i < series.size(); ++i) {
    const char* colour = kColours[i % (sizeof kColours / sizeof *kColours)];
    auto pts = series[i].points;
    std::sort(pts.begin(), pts.end());
    std::string p;
    for (const auto& [x, y] : pts) p += (p.empty() ? "" : " ") + num(px(x)) + "," + num(py(y));
    o += "<g class=\"series\"><title>" + xml_escape(series[i].name) + "</title>\n";
    o += "<polyline points=\"" + p + "\" fill=\"none\" stroke=\"" + colour + "\" stroke-width=\"2\"/>\n";
    for (const auto& [x, y] : pts)
      o += "<circle cx=\"" + num(px(x)) + "\" cy=\"" + num(py(y)) + "\" r=\"3\" fill=\"" + colour + "\"/>\n";
    o += "</g>\n";
    const double ly = top + 8 + 18.0 * static_cast<double>(i), lx = left + pw + 14;
    o += "<line x1=\"" + num(lx) + "\" y1=\"" + num(ly) + "\" x2=\"" + num(lx + 18) + "\" y2=\"" + num(ly) +
         "\" stroke=\"" + colour + "\" stroke-width=\"2\"/>\n";
    o += "<text x=\"" + num(lx + 24) + "\" y=\"" + num(ly) + "\" dominant-baseline=\"middle\">" +
         xml_escape(series[i].name) + "</text>\n";
  }
  o += "</svg>\n";
  return o;
}

}  // namespace pc
