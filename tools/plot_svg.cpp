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

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

namespace {

// The document's start: size, font, a white background.
std::string svg_header(double W, double H) {
  return fmt::format(
      "<?xml version='1.0' encoding='UTF-8'?>\n"
      "<svg xmlns='http://www.w3.org/2000/svg' width='{0:.0f}' height='{1:.0f}' "
      "viewBox='0 0 {0:.0f} {1:.0f}' font-family='DejaVu Sans, Helvetica, Arial, sans-serif'>\n"
      "<rect width='100%' height='100%' fill='white'/>\n",
      W, H);
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

// Pixel geometry: the plot area and the maps from data to pixels. On a logarithmic axis the
// frame's range is in log10 units and px/py take the data value itself.
struct Frame {
  double x0, y0, w, h;  // plot area (top-left corner, size)
  double xmin, xmax, ymin, ymax;
  bool xlog = false, ylog = false;
  double px(double x) const { return x0 + ((xlog ? std::log10(x) : x) - xmin) / (xmax - xmin) * w; }
  double py(double y) const {
    return y0 + h - ((ylog ? std::log10(y) : y) - ymin) / (ymax - ymin) * h;
  }
};

// Tick positions in data units and their labels: "nice" steps, or on a log axis every power of
// ten inside the range, labelled 1e-3 (thinned to about `target` labels).
std::vector<std::pair<double, std::string>> axis_ticks(double lo, double hi, bool log, int target) {
  std::vector<std::pair<double, std::string>> out;
  if (log) {
    const int a = (int)std::ceil(lo - 1e-9), b = (int)std::floor(hi + 1e-9);
    const int every = std::max(1, (b - a + target) / target);
    for (int k = a; k <= b; k++)
      if ((k - a) % every == 0)
        out.push_back({std::pow(10.0, k), k == 0 ? "1" : fmt::format("1e{}", k)});
    return out;
  }
  const auto t = nice_ticks(lo, hi, target);
  const double step = t.size() > 1 ? t[1] - t[0] : 1;
  for (double v : t) out.push_back({v, tick_label(v, step)});
  return out;
}

void draw_axes(std::string& svg, const Frame& f, const LinePlot& p) {
  for (const auto& [v, label] : axis_ticks(f.xmin, f.xmax, f.xlog, 8)) {
    const double x = f.px(v);
    svg += fmt::format("<line x1='{:.1f}' y1='{:.1f}' x2='{:.1f}' y2='{:.1f}' stroke='#e5e5e5'/>\n",
                       x, f.y0, x, f.y0 + f.h);
    svg += fmt::format("<line x1='{:.1f}' y1='{:.1f}' x2='{:.1f}' y2='{:.1f}' stroke='#333'/>\n", x,
                       f.y0 + f.h, x, f.y0 + f.h + 5);
    svg +=
        fmt::format("<text x='{:.1f}' y='{:.1f}' text-anchor='middle' font-size='12'>{}</text>\n",
                    x, f.y0 + f.h + 19, label);
  }
  for (const auto& [v, label] : axis_ticks(f.ymin, f.ymax, f.ylog, 7)) {
    const double y = f.py(v);
    svg += fmt::format("<line x1='{:.1f}' y1='{:.1f}' x2='{:.1f}' y2='{:.1f}' stroke='#e5e5e5'/>\n",
                       f.x0, y, f.x0 + f.w, y);
    svg += fmt::format("<line x1='{:.1f}' y1='{:.1f}' x2='{:.1f}' y2='{:.1f}' stroke='#333'/>\n",
                       f.x0 - 5, y, f.x0, y);
    svg += fmt::format("<text x='{:.1f}' y='{:.1f}' text-anchor='end' font-size='12'>{}</text>\n",
                       f.x0 - 8, y + 4, label);
  }
  svg += fmt::format(
      "<rect x='{:.1f}' y='{:.1f}' width='{:.1f}' height='{:.1f}' fill='none' "
      "stroke='#333'/>\n",
      f.x0, f.y0, f.w, f.h);
  svg += fmt::format("<text x='{:.1f}' y='{:.1f}' text-anchor='middle' font-size='14'>{}</text>\n",
                     f.x0 + f.w / 2, f.y0 + f.h + 44, xml_escape(p.xlabel));
  const double ly = f.y0 + f.h / 2;
  svg += fmt::format(
      "<text x='{:.1f}' y='{:.1f}' text-anchor='middle' font-size='14' "
      "transform='rotate(-90 {:.1f} {:.1f})'>{}</text>\n",
      f.x0 - 58, ly, f.x0 - 58, ly, xml_escape(p.ylabel));
}

// Bands first (under every line), then lines, then point markers where points are few.
void draw_series(std::string& svg, const Frame& f, const LinePlot& p,
                 const std::vector<Style>& st) {
  svg += fmt::format(
      "<defs><clipPath id='plot-area'><rect x='{:.1f}' y='{:.1f}' width='{:.1f}' "
      "height='{:.1f}'/></clipPath></defs>\n<g clip-path='url(#plot-area)'>\n",
      f.x0, f.y0, f.w, f.h);
  for (size_t i = 0; i < p.series.size(); i++) {
    const PlotSeries& s = p.series[i];
    if (s.lo.size() != s.x.size() || s.hi.size() != s.x.size() || s.x.size() < 2) continue;
    std::string pts;
    for (size_t k = 0; k < s.x.size(); k++)
      pts += fmt::format("{:.1f},{:.1f} ", f.px(s.x[k]), f.py(s.hi[k]));
    for (size_t k = s.x.size(); k-- > 0;)
      pts += fmt::format("{:.1f},{:.1f} ", f.px(s.x[k]), f.py(s.lo[k]));
    svg += fmt::format("<polygon points='{}' fill='{}' fill-opacity='{}' stroke='none'/>\n", pts,
                       st[i].color, st[i].band_opacity);
  }
  for (size_t i = 0; i < p.series.size(); i++) {
    const PlotSeries& s = p.series[i];
    std::string pts;
    auto drawn = [&](size_t k) {
      return std::isfinite(f.py(s.y[k])) && std::isfinite(f.px(s.x[k]));
    };
    for (size_t k = 0; k < s.x.size(); k++)
      if (drawn(k)) pts += fmt::format("{:.1f},{:.1f} ", f.px(s.x[k]), f.py(s.y[k]));
    svg += fmt::format(
        "<polyline points='{}' fill='none' stroke='{}' stroke-width='{}' "
        "stroke-linejoin='round'{}/>\n",
        pts, st[i].color, st[i].width,
        st[i].dash.empty() ? "" : fmt::format(" stroke-dasharray='{}'", st[i].dash));
    if (s.x.size() > 40) continue;
    for (size_t k = 0; k < s.x.size(); k++)
      if (drawn(k))
        svg += fmt::format("<circle cx='{:.1f}' cy='{:.1f}' r='2.5' fill='{}'/>\n", f.px(s.x[k]),
                           f.py(s.y[k]), st[i].color);
  }
  svg += "</g>\n";
}

void draw_legend(std::string& svg, double x, double y, const LinePlot& p,
                 const std::vector<Style>& st) {
  if (!p.legend_title.empty()) {
    svg += fmt::format("<text x='{:.1f}' y='{:.1f}' font-size='12' fill='#444'>{}</text>\n", x,
                       y + 4, xml_escape(p.legend_title));
    y += 24;
  }
  for (size_t i = 0; i < p.series.size(); i++, y += 22) {
    const PlotSeries& s = p.series[i];
    if (!s.lo.empty())
      svg += fmt::format(
          "<rect x='{:.1f}' y='{:.1f}' width='26' height='12' fill='{}' "
          "fill-opacity='{}'/>\n",
          x, y - 6, st[i].color, st[i].band_opacity);
    svg += fmt::format(
        "<line x1='{:.1f}' y1='{:.1f}' x2='{:.1f}' y2='{:.1f}' stroke='{}' "
        "stroke-width='{}'{}/>\n",
        x, y, x + 26, y, st[i].color, st[i].width,
        st[i].dash.empty() ? "" : fmt::format(" stroke-dasharray='{}'", st[i].dash));
    svg += fmt::format("<text x='{:.1f}' y='{:.1f}' font-size='12'>{}</text>\n", x + 34, y + 4,
                       xml_escape(s.label));
  }
}

}  // namespace

std::string render_svg(const LinePlot& p) {
  // The legend sits right of the plot; its width follows the longest label (~7 px per character
  // at 12 px, generous for a proportional font).
  size_t longest = 0;
  for (const auto& s : p.series) longest = std::max(longest, s.label.size());
  const double legend_w =
      std::max(7.0 * (double)p.legend_title.size(), 34 + 7.0 * (double)longest) + 20;
  const double left = 90, top = 70, bottom = 62, plot_w = 620, plot_h = 420;
  const double W = left + plot_w + 24 + legend_w, H = top + plot_h + bottom;
  Frame f{left, top, plot_w, plot_h, p.xmin, p.xmax, p.ymin, p.ymax, p.xlog, p.ylog};
  if (f.xlog) f.xmin = std::log10(f.xmin), f.xmax = std::log10(f.xmax);
  if (f.ylog) f.ymin = std::log10(f.ymin), f.ymax = std::log10(f.ymax);
  if (!(f.xmax > f.xmin)) f.xmax = f.xmin + 1;  // a degenerate range still draws
  if (!(f.ymax > f.ymin)) f.ymax = f.ymin + 1;

  std::string svg = svg_header(W, H);
  svg += fmt::format("<text x='{:.1f}' y='28' font-size='17' font-weight='bold'>{}</text>\n", left,
                     xml_escape(p.title));
  svg += fmt::format("<text x='{:.1f}' y='50' font-size='12' fill='#444'>{}</text>\n", left,
                     xml_escape(p.subtitle));
  const auto st = styles(p.series);
  draw_axes(svg, f, p);
  draw_series(svg, f, p, st);
  draw_legend(svg, left + plot_w + 24, top + 12, p, st);
  return svg + "</svg>\n";
}

std::string render_dot_svg(const DotPlot& p) {
  size_t label_chars = 4, note_chars = 4;
  double lo = 0, hi = 0;  // zero is always in view
  for (const auto& r : p.rows) {
    label_chars = std::max(label_chars, r.label.size()),
    note_chars = std::max(note_chars, r.note.size());
    for (double v : r.values) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  const double pad = 0.08 * std::max(hi - lo, 1e-3);
  const double left = 24 + 7.0 * (double)label_chars, row_h = 34, top = 70, plot_w = 520;
  const double plot_h = row_h * (double)std::max<size_t>(1, p.rows.size()), bottom = 62;
  const double W = left + plot_w + 24 + 7.0 * (double)note_chars + 20, H = top + plot_h + bottom;
  Frame f{left, top, plot_w, plot_h, lo - pad, hi + pad, 0, 1};
  std::string svg = svg_header(W, H);
  svg += fmt::format("<text x='24' y='28' font-size='17' font-weight='bold'>{}</text>\n",
                     xml_escape(p.title));
  svg += fmt::format("<text x='24' y='50' font-size='12' fill='#444'>{}</text>\n",
                     xml_escape(p.subtitle));
  for (const auto& [v, label] : axis_ticks(f.xmin, f.xmax, false, 7)) {
    const double x = f.px(v);
    svg += fmt::format("<line x1='{:.1f}' y1='{:.1f}' x2='{:.1f}' y2='{:.1f}' stroke='#e5e5e5'/>\n",
                       x, f.y0, x, f.y0 + f.h);
    svg +=
        fmt::format("<text x='{:.1f}' y='{:.1f}' text-anchor='middle' font-size='12'>{}</text>\n",
                    x, f.y0 + f.h + 19, label);
  }
  const double x0 = f.px(0);
  svg += fmt::format(
      "<line x1='{:.1f}' y1='{:.1f}' x2='{:.1f}' y2='{:.1f}' stroke='#000' "
      "stroke-width='1.5'/>\n",
      x0, f.y0, x0, f.y0 + f.h);
  svg += fmt::format(
      "<rect x='{:.1f}' y='{:.1f}' width='{:.1f}' height='{:.1f}' fill='none' "
      "stroke='#333'/>\n",
      f.x0, f.y0, f.w, f.h);
  svg += fmt::format("<text x='{:.1f}' y='{:.1f}' text-anchor='middle' font-size='14'>{}</text>\n",
                     f.x0 + f.w / 2, f.y0 + f.h + 44, xml_escape(p.xlabel));
  for (size_t i = 0; i < p.rows.size(); i++) {
    const DotRow& r = p.rows[i];
    const double y = f.y0 + row_h * ((double)i + 0.5);
    const char* color = kPalette[i % kPaletteSize];
    svg += fmt::format("<text x='{:.1f}' y='{:.1f}' text-anchor='end' font-size='13'>{}</text>\n",
                       f.x0 - 8, y + 4, xml_escape(r.label));
    svg += fmt::format("<text x='{:.1f}' y='{:.1f}' font-size='12' fill='#444'>{}</text>\n",
                       f.x0 + f.w + 10, y + 4, xml_escape(r.note));
    if (r.values.empty()) continue;
    double m = 0;
    for (double v : r.values) m += v;
    m /= (double)r.values.size();
    double ss = 0;
    for (double v : r.values) ss += (v - m) * (v - m);
    const double sd = r.values.size() > 1 ? std::sqrt(ss / double(r.values.size() - 1)) : 0;
    svg += fmt::format(
        "<line x1='{:.1f}' y1='{:.1f}' x2='{:.1f}' y2='{:.1f}' stroke='{}' "
        "stroke-width='2'/>\n",
        f.px(m - sd), y, f.px(m + sd), y, color);
    svg += fmt::format(
        "<line x1='{:.1f}' y1='{:.1f}' x2='{:.1f}' y2='{:.1f}' stroke='{}' "
        "stroke-width='3'/>\n",
        f.px(m), y - 9, f.px(m), y + 9, color);
    for (double v : r.values)
      svg += fmt::format(
          "<circle cx='{:.1f}' cy='{:.1f}' r='4' fill='{}' fill-opacity='0.75' "
          "stroke='#333' stroke-width='0.6'/>\n",
          f.px(v), y, color);
  }
  return svg + "</svg>\n";
}

}  // namespace scalevec
