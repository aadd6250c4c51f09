#pragma once
// A small self-contained SVG line chart (no plotting dependency): axes with "nice" ticks, one
// <polyline> (plus point markers) per series, a legend. Used for metric-vs-samples-seen plots.
#include <string>
#include <utility>
#include <vector>

namespace pc {

struct PlotSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in x order
};

struct PlotOptions {
  std::string title, x_label, y_label;
  int width = 640, height = 400;
  bool y_from_zero = true;  // include 0 in the y range (accuracies, recalls)
};

std::string svg_line_chart(const std::vector<PlotSeries>& series, const PlotOptions& opt);

// Tick positions covering [lo, hi] at a 1/2/5 x 10^k step, about `target` of them.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);
// Compact tick label: 1200 -> "1.2k", 3500000 -> "3.5M", 0.25 -> "0.25".
std::string tick_label(double v);

}  // namespace pc
