// A small line plot written as a self-contained SVG file: lines with an optional band around each
// (e.g. the mean over seeds and their min..max), axes with "nice" ticks and labels, a title, and a
// legend beside the plot. Written by hand so that looking at results needs no plotting package;
// any browser or image viewer shows the file.
#pragma once

#include <string>
#include <vector>

namespace scalevec {

struct PlotSeries {
  std::string label;           // legend text
  std::vector<double> x, y;    // the line, x increasing
  std::vector<double> lo, hi;  // optional band around the line (empty, or one per x)
  bool emphasize = false;      // draw in black and thicker (e.g. the baseline of a comparison)
};

struct LinePlot {
  std::string title, subtitle, xlabel, ylabel, legend_title;
  double xmin = 0, xmax = 1, ymin = 0, ymax = 1;  // the visible ranges: the caller chooses them,
                                                  // and whatever falls outside is clipped
  bool xlog = false, ylog = false;  // logarithmic axis (ticks at powers of ten; data > 0)
  std::vector<PlotSeries> series;
};

// The complete SVG document.
std::string render_svg(const LinePlot& plot);

// A dot plot of paired differences: one row per label, a dot per value (e.g. per seed), the mean
// as a bar with a whisker of ± one standard deviation, and a vertical line at zero.
struct DotRow {
  std::string label, note;  // left of the row; right of it (e.g. "−0.0346 ± 0.0026, 3/3 lower")
  std::vector<double> values;  // the dots
};
struct DotPlot {
  std::string title, subtitle, xlabel;
  std::vector<DotRow> rows;
};
std::string render_dot_svg(const DotPlot& plot);

// &, <, >, " and ' as XML entities (for text and attribute values).
std::string xml_escape(const std::string& s);

// Tick positions inside [lo, hi] at a step of 1, 2 or 5 times a power of ten, about `target` of
// them.
std::vector<double> nice_ticks(double lo, double hi, int target = 6);

}  // namespace scalevec
