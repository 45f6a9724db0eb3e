#include "plot_svg.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace scalevec {

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) return {lo};
  const double raw = (hi - lo) / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> ticks;
  // Integer multiples of the step, so 0.30000000000000004 never shows up as a tick position.
  for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + 1e-9 * step; k++)
    ticks.push_back(k * step);
  return ticks;
}

namespace {

std::string escape(const std::string& s) {
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

// Enough decimals to tell neighbouring ticks apart (step 0.02 -> 2 decimals, step 50 -> none).
std::string tick_label(double v, double step) {
  const int decimals = std::max(0, (int)-std::floor(std::log10(step) + 1e-9));
  if (std::abs(v) < step * 1e-9) v = 0;  // no "-0.00"
  return fmt::format("{:.{}f}", v, decimals);
}

// Okabe–Ito colours (distinguishable with colour-blindness), without yellow, which is faint on
// white. The emphasized series is black. Past the palette, colours repeat with dashed lines.
const char* const kPalette[] = {"#E69F00", "#0072B2", "#009E73", "#D55E00",
                                "#56B4E9", "#CC79A7", "#999999"};
constexpr int kPaletteSize = sizeof kPalette / sizeof kPalette[0];

struct Style {
  std::string color, dash;
  double width, band_opacity;
};

std::vector<Style> styles(const std::vector<PlotSeries>& series) {
  std::vector<Style> out;
  int next = 0;
  for (const auto& s : series) {
    if (s.emphasize) {
      out.push_back({"#000000", "", 2.5, 0.08});  // black bands look heavier: lighter
      continue;
    }
    const int k = next++;
    out.push_back({kPalette[k % kPaletteSize], k >= kPaletteSize ? "6,3" : "", 1.8, 0.15});
  }
  return out;
}

// Pixel geometry: the plot area and the maps from data to pixels.
struct Frame {
  double x0, y0, w, h;  // plot area (top-left corner, size)
  double xmin, xmax, ymin, ymax;
  double px(double x) const { return x0 + (x - xmin) / (xmax - xmin) * w; }
  double py(double y) const { return y0 + h - (y - ymin) / (ymax - ymin) * h; }
};

void draw_axes(std::string& svg, const Frame& f, const LinePlot& p) {
  const auto xt = nice_ticks(f.xmin, f.xmax, 8), yt = nice_ticks(f.ymin, f.ymax, 7);
  const double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1, ystep = yt.size() > 1 ? yt[1] - yt[0] : 1;
  for (double v : xt) {
    const double x = f.px(v);
    svg += fmt::format("<line x1='{:.1f}' y1='{:.1f}' x2='{:.1f}' y2='{:.1f}' stroke='#e5e5e5'/>\n",
                       x, f.y0, x, f.y0 + f.h);
    svg += fmt::format("<line x1='{:.1f}' y1='{:.1f}' x2='{:.1f}' y2='{:.1f}' stroke='#333'/>\n", x,
                       f.y0 + f.h, x, f.y0 + f.h + 5);
    svg += fmt::format("<text x='{:.1f}' y='{:.1f}' text-anchor='middle' font-size='12'>{}</text>\n",
                       x, f.y0 + f.h + 19, tick_label(v, xstep));
  }
  for (double v : yt) {
    const double y = f.py(v);
    svg += fmt::format("<line x1='{:.1f}' y1='{:.1f}' x2='{:.1f}' y2='{:.1f}' stroke='#e5e5e5'/>\n",
                       f.x0, y, f.x0 + f.w, y);
    svg += fmt::format("<line x1='{:.1f}' y1='{:.1f}' x2='{:.1f}' y2='{:.1f}' stroke='#333'/>\n",
                       f.x0 - 5, y, f.x0, y);
    svg += fmt::format("<text x='{:.1f}' y='{:.1f}' text-anchor='end' font-size='12'>{}</text>\n",
                       f.x0 - 8, y + 4, tick_label(v, ystep));
  }
  svg += fmt::format("<rect x='{:.1f}' y='{:.1f}' width='{:.1f}' height='{:.1f}' fill='none' "
                     "stroke='#333'/>\n", f.x0, f.y0, f.w, f.h);
  svg += fmt::format("<text x='{:.1f}' y='{:.1f}' text-anchor='middle' font-size='14'>{}</text>\n",
                     f.x0 + f.w / 2, f.y0 + f.h + 44, escape(p.xlabel));
  const double ly = f.y0 + f.h / 2;
  svg += fmt::format("<text x='{:.1f}' y='{:.1f}' text-anchor='middle' font-size='14' "
                     "transform='rotate(-90 {:.1f} {:.1f})'>{}</text>\n",
                     f.x0 - 58, ly, f.x0 - 58, ly, escape(p.ylabel));
}

// Bands first (under every line), then lines, then point markers where points are few.
void draw_series(std::string& svg, const Frame& f, const LinePlot& p, const std::vector<Style>& st) {
  svg += fmt::format("<defs><clipPath id='plot-area'><rect x='{:.1f}' y='{:.1f}' width='{:.1f}' "
                     "height='{:.1f}'/></clipPath></defs>\n<g clip-path='url(#plot-area)'>\n",
                     f.x0, f.y0, f.w, f.h);
  for (size_t i = 0; i < p.series.size(); i++) {
    const PlotSeries& s = p.series[i];
    if (s.lo.size() != s.x.size() || s.hi.size() != s.x.size() || s.x.size() < 2) continue;
    std::string pts;
    for (size_t k = 0; k < s.x.size(); k++) pts += fmt::format("{:.1f},{:.1f} ", f.px(s.x[k]), f.py(s.hi[k]));
    for (size_t k = s.x.size(); k-- > 0;) pts += fmt::format("{:.1f},{:.1f} ", f.px(s.x[k]), f.py(s.lo[k]));
    svg += fmt::format("<polygon points='{}' fill='{}' fill-opacity='{}' stroke='none'/>\n", pts,
                       st[i].color, st[i].band_opacity);
  }
  for (size_t i = 0; i < p.series.size(); i++) {
    const PlotSeries& s = p.series[i];
    std::string pts;
    for (size_t k = 0; k < s.x.size(); k++)
      if (std::isfinite(s.y[k])) pts += fmt::format("{:.1f},{:.1f} ", f.px(s.x[k]), f.py(s.y[k]));
    svg += fmt::format("<polyline points='{}' fill='none' stroke='{}' stroke-width='{}' "
                       "stroke-linejoin='round'{}/>\n", pts, st[i].color, st[i].width,
                       st[i].dash.empty() ? "" : fmt::format(" stroke-dasharray='{}'", st[i].dash));
    if (s.x.size() > 40) continue;
    for (size_t k = 0; k < s.x.size(); k++)
      if (std::isfinite(s.y[k]))
        svg += fmt::format("<circle cx='{:.1f}' cy='{:.1f}' r='2.5' fill='{}'/>\n", f.px(s.x[k]),
                           f.py(s.y[k]), st[i].color);
  }
  svg += "</g>\n";
}

void draw_legend(std::string& svg, double x, double y, const LinePlot& p, const std::vector<Style>& st) {
  if (!p.legend_title.empty()) {
    svg += fmt::format("<text x='{:.1f}' y='{:.1f}' font-size='12' fill='#444'>{}</text>\n", x, y + 4,
                       escape(p.legend_title));
    y += 24;
  }
  for (size_t i = 0; i < p.series.size(); i++, y += 22) {
    const PlotSeries& s = p.series[i];
    if (!s.lo.empty())
      svg += fmt::format("<rect x='{:.1f}' y='{:.1f}' width='26' height='12' fill='{}' "
                         "fill-opacity='{}'/>\n", x, y - 6, st[i].color, st[i].band_opacity);
    svg += fmt::format("<line x1='{:.1f}' y1='{:.1f}' x2='{:.1f}' y2='{:.1f}' stroke='{}' "
                       "stroke-width='{}'{}/>\n", x, y, x + 26, y, st[i].color, st[i].width,
                       st[i].dash.empty() ? "" : fmt::format(" stroke-dasharray='{}'", st[i].dash));
    svg += fmt::format("<text x='{:.1f}' y='{:.1f}' font-size='12'>{}</text>\n", x + 34, y + 4,
                       escape(s.label));
  }
}

}  // namespace

std::string render_svg(const LinePlot& p) {
  // The legend sits right of the plot; its width follows the longest label (~7 px per character
  // at 12 px, generous for a proportional font).
  size_t longest = 0;
  for (const auto& s : p.series) longest = std::max(longest, s.label.size());
  const double legend_w = std::max(7.0 * (double)p.legend_title.size(), 34 + 7.0 * (double)longest) + 20;
  const double left = 90, top = 70, bottom = 62, plot_w = 620, plot_h = 420;
  const double W = left + plot_w + 24 + legend_w, H = top + plot_h + bottom;
  Frame f{left, top, plot_w, plot_h, p.xmin, p.xmax, p.ymin, p.ymax};
  if (!(f.xmax > f.xmin)) f.xmax = f.xmin + 1;  // a degenerate range still draws
  if (!(f.ymax > f.ymin)) f.ymax = f.ymin + 1;

  std::string svg = fmt::format(
      "<?xml version='1.0' encoding='UTF-8'?>\n"
      "<svg xmlns='http://www.w3.org/2000/svg' width='{0:.0f}' height='{1:.0f}' "
      "viewBox='0 0 {0:.0f} {1:.0f}' font-family='DejaVu Sans, Helvetica, Arial, sans-serif'>\n"
      "<rect width='100%' height='100%' fill='white'/>\n",
      W, H);
  svg += fmt::format("<text x='{:.1f}' y='28' font-size='17' font-weight='bold'>{}</text>\n", left,
                     escape(p.title));
  svg += fmt::format("<text x='{:.1f}' y='50' font-size='12' fill='#444'>{}</text>\n", left,
                     escape(p.subtitle));
  const auto st = styles(p.series);
  draw_axes(svg, f, p);
  draw_series(svg, f, p, st);
  draw_legend(svg, left + plot_w + 24, top + 12, p, st);
  return svg + "</svg>\n";
}

}  // namespace scalevec
