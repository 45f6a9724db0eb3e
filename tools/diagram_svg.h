// A tiny SVG drawing kit for `scalevec diagram`: rounded boxes with one or two lines of text,
// arrows (straight or with one elbow), circles and plain labels. Everything is written at fixed
// precision (one decimal), so the same drawing gives the same bytes. Only plain SVG 1.1: no CSS,
// no scripts, no external references; rsvg-convert and every browser render it.
//
// Text may carry subscripts and superscripts in a small markup: "W_{q}", "k^{T}". They become
// <tspan>s shifted with dy (which every renderer supports) and a smaller font.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "plot_svg.h"  // xml_escape

namespace scalevec::diagram {

inline const char* const kFont = "DejaVu Sans, Helvetica, Arial, sans-serif";

// One coordinate, at fixed precision.
inline std::string num(double v) {
  if (v > -0.05 && v < 0.05) v = 0;  // no "-0.0"
  return fmt::format("{:.1f}", v);
}

// The markup "_{...}" / "^{...}" as escaped SVG text with shifted <tspan>s; `size` is the font
// size of the surrounding text in px.
inline std::string rich_text(const std::string& s, double size) {
  const double shift = size * 0.3, small = size * 0.75;
  std::string out;
  double level = 0;  // current baseline offset (dy accumulated so far)
  size_t i = 0;
  auto emit = [&](const std::string& chunk, double target, double font) {
    if (chunk.empty()) return;
    if (target == level && font == size) {
      out += xml_escape(chunk);
      return;
    }
    out += "<tspan";
    if (target != level) out += " dy='" + num(target - level) + "'";
    if (font != size) out += " font-size='" + num(font) + "'";
    out += ">" + xml_escape(chunk) + "</tspan>";
    level = target;
  };
  std::string plain;
  while (i < s.size()) {
    if ((s[i] == '_' || s[i] == '^') && i + 1 < s.size() && s[i + 1] == '{') {
      const size_t close = s.find('}', i + 2);
      if (close != std::string::npos) {
        emit(plain, 0, size), plain.clear();
        emit(s.substr(i + 2, close - i - 2), s[i] == '_' ? shift : -shift, small);
        i = close + 1;
        continue;
      }
    }
    plain += s[i++];
  }
  emit(plain, 0, size);
  return out;
}

// How a box looks.
struct Style {
  Style(std::string fill_ = "#ffffff", std::string stroke_ = "#333333", double width = 1.2,
        std::string dash_ = "")
      : fill(std::move(fill_)),
        stroke(std::move(stroke_)),
        stroke_width(width),
        dash(std::move(dash_)) {}
  std::string fill, stroke;
  double stroke_width;
  std::string dash;   // stroke-dasharray, "" = solid
  bool bold = false;  // the first line of text
};

struct Point {
  double x = 0, y = 0;
};

// An SVG document under construction: the drawing calls append elements in order.
class Svg {
 public:
  // A rectangle centred at (cx, cy), of size w x h, with up to two lines of text: `line1` (12 px,
  // rich markup) and `line2` (9.5 px, grey, plain), and an optional tooltip. `cls` is the class of
  // the enclosing <g>, which tools (and the test) use to find the box.
  void box(double cx, double cy, double w, double h, const Style& st, const std::string& line1,
           const std::string& line2 = "", const std::string& tooltip = "",
           const std::string& cls = "") {
    body_ += cls.empty() ? "<g>" : "<g class='" + cls + "'>";
    if (!tooltip.empty()) body_ += "<title>" + xml_escape(tooltip) + "</title>";
    body_ += fmt::format(
        "<rect x='{}' y='{}' width='{}' height='{}' rx='5' fill='{}' stroke='{}' "
        "stroke-width='{}'{}/>",
        num(cx - w / 2), num(cy - h / 2), num(w), num(h), st.fill, st.stroke, num(st.stroke_width),
        st.dash.empty() ? "" : " stroke-dasharray='" + st.dash + "'");
    const bool two = !line2.empty();
    text_at(cx, cy + (two ? -2.5 : 4.2), line1, 12, "middle", "#111111", st.bold);
    if (two) text_at(cx, cy + 10.5, line2, 9.5, "middle", "#444444", false, false);
    body_ += "</g>\n";
  }

  // A label; `rich` enables the _{}/^{} markup.
  void text(double x, double y, const std::string& s, double size = 12,
            const std::string& anchor = "start", const std::string& fill = "#111111",
            bool bold = false, bool rich = true) {
    text_at(x, y, s, size, anchor, fill, bold, rich);
    body_ += "\n";
  }

  // A label read bottom to top, centred at (x, y).
  void vtext(double x, double y, const std::string& s, double size = 12,
             const std::string& fill = "#111111") {
    body_ += fmt::format(
        "<text x='{0}' y='{1}' font-size='{2}' text-anchor='middle' fill='{3}' "
        "transform='rotate(-90 {0} {1})'>{4}</text>\n",
        num(x), num(y), num(size), fill, xml_escape(s));
  }

  // A polyline through `pts` with an arrowhead at the last point.
  void arrow(const std::vector<Point>& pts, const std::string& color = "#444444",
             double width = 1.3) {
    std::string p;
    for (const Point& q : pts) p += (p.empty() ? "" : " ") + num(q.x) + "," + num(q.y);
    body_ += fmt::format(
        "<polyline points='{}' fill='none' stroke='{}' stroke-width='{}' "
        "stroke-linejoin='round' marker-end='url(#arrow)'/>\n",
        p, color, num(width));
  }
  // A straight line without arrowhead.
  void line(Point a, Point b, const std::string& color = "#444444", double width = 1.3,
            const std::string& dash = "") {
    body_ +=
        fmt::format("<line x1='{}' y1='{}' x2='{}' y2='{}' stroke='{}' stroke-width='{}'{}/>\n",
                    num(a.x), num(a.y), num(b.x), num(b.y), color, num(width),
                    dash.empty() ? "" : " stroke-dasharray='" + dash + "'");
  }
  void circle(Point c, double r, const std::string& fill, const std::string& stroke = "none",
              double width = 1.3) {
    body_ +=
        fmt::format("<circle cx='{}' cy='{}' r='{}' fill='{}' stroke='{}' stroke-width='{}'/>\n",
                    num(c.x), num(c.y), num(r), fill, stroke, num(width));
  }
  // A rectangle without text (frames, legend swatches).
  void rect(double x, double y, double w, double h, const Style& st, double rx = 5,
            const std::string& cls = "") {
    body_ += fmt::format(
        "<rect{} x='{}' y='{}' width='{}' height='{}' rx='{}' fill='{}' "
        "stroke='{}' stroke-width='{}'{}/>\n",
        cls.empty() ? "" : " class='" + cls + "'", num(x), num(y), num(w), num(h), num(rx), st.fill,
        st.stroke, num(st.stroke_width),
        st.dash.empty() ? "" : " stroke-dasharray='" + st.dash + "'");
  }

  // The complete document, width x height px, white background, one arrowhead marker.
  std::string document(double width, double height, const std::string& title) const {
    return fmt::format(
               "<?xml version='1.0' encoding='UTF-8'?>\n"
               "<svg xmlns='http://www.w3.org/2000/svg' version='1.1' width='{0}' height='{1}' "
               "viewBox='0 0 {0} {1}' font-family='{2}'>\n"
               "<title>{3}</title>\n"
               "<defs><marker id='arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' "
               "markerHeight='7' markerUnits='userSpaceOnUse' orient='auto'>"
               "<path d='M0,1 L9,5 L0,9 z' fill='#444444'/></marker></defs>\n"
               "<rect width='100%' height='100%' fill='white'/>\n",
               num(width), num(height), kFont, xml_escape(title)) +
           body_ + "</svg>\n";
  }

 private:
  void text_at(double x, double y, const std::string& s, double size, const std::string& anchor,
               const std::string& fill, bool bold, bool rich = true) {
    body_ +=
        fmt::format("<text x='{}' y='{}' font-size='{}'{}{}{}>{}</text>", num(x), num(y), num(size),
                    anchor == "start" ? "" : " text-anchor='" + anchor + "'",
                    fill == "#111111" ? "" : " fill='" + fill + "'",
                    bold ? " font-weight='bold'" : "", rich ? rich_text(s, size) : xml_escape(s));
  }
  std::string body_;
};

// Splits `s` at spaces into lines of at most `width` characters (a word longer than that gets a
// line of its own). Counts bytes: good enough for the mostly-ASCII legend texts.
inline std::vector<std::string> wrap(const std::string& s, size_t width) {
  std::vector<std::string> lines;
  std::string cur;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(' ', start);
    if (end == std::string::npos) end = s.size();
    const std::string word = s.substr(start, end - start);
    if (!cur.empty() && cur.size() + 1 + word.size() > width) lines.push_back(cur), cur.clear();
    cur += (cur.empty() ? "" : " ") + word;
    start = end + 1;
  }
  if (!cur.empty()) lines.push_back(cur);
  return lines;
}

}  // namespace scalevec::diagram
