// `scalevec diagram`, checked against the model's own structure: for every scale strategy preset,
// with and without QK-Norm and post-norms (and a few custom placements), the SVG must show every
// scale vector of layer 0 and of the final norm exactly once, as a box named after its parameters,
// coloured by the type the layout gives it, dashed when a parameter's gradient is structurally
// zero, and nothing else as a scale box. The document must be well-formed with one root <svg>,
// its boxes must not overlap, and the same flags must give the same bytes. Bad input gets the
// CLI's one-line error.
//
// The expected values come from building the same ModelConfig here (model_preset + set_scale +
// the switches) and reading Transformer<float>(cfg, 0).layout(), never from a list per preset.
#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli_util.h"
#include "ref/common.h"
#include "ref/model/transformer.h"

namespace {

using namespace cli;
using scalevec::ModelConfig;
using scalevec::ParamInfo;

// ------------------------------------------------------------------------------------------------
// Reading the SVG.

// Well-formed enough: balanced, properly nested tags, one root <svg> and nothing after it,
// attribute values quoted, entities known. Returns "" or what is wrong.
std::string check_xml(const std::string& s) {
  std::vector<std::string> stack;
  int roots = 0;
  size_t i = 0;
  auto text_ok = [&](size_t from, size_t to) -> std::string {
    for (size_t k = from; k < to; k++) {
      if (s[k] == '>') return "stray '>' at " + std::to_string(k);
      if (s[k] != '&') continue;
      const size_t semi = s.find(';', k);
      if (semi == std::string::npos) return "unterminated entity at " + std::to_string(k);
      const std::string e = s.substr(k + 1, semi - k - 1);
      if (e != "amp" && e != "lt" && e != "gt" && e != "quot" && e != "apos" && e[0] != '#')
        return "unknown entity &" + e + ";";
    }
    return "";
  };
  while (i < s.size()) {
    const size_t lt = s.find('<', i);
    const size_t text_end = lt == std::string::npos ? s.size() : lt;
    if (const std::string e = text_ok(i, text_end); !e.empty()) return e;
    if (stack.empty() && roots > 0 && s.find_first_not_of(" \n\r\t", i) < text_end)
      return "text after the root element";
    if (lt == std::string::npos) break;
    if (s.compare(lt, 4, "<!--") == 0) {
      const size_t end = s.find("-->", lt);
      if (end == std::string::npos) return "unterminated comment";
      i = end + 3;
      continue;
    }
    if (s.compare(lt, 2, "<?") == 0) {
      if (lt != 0) return "processing instruction not at the start";
      const size_t end = s.find("?>", lt);
      if (end == std::string::npos) return "unterminated <?...?>";
      i = end + 2;
      continue;
    }
    // A tag: find its end outside quoted attribute values.
    size_t k = lt + 1;
    char quote = 0;
    for (; k < s.size(); k++) {
      if (quote) {
        if (s[k] == quote)
          quote = 0;
        else if (s[k] == '<')
          return "'<' inside an attribute value";
      } else if (s[k] == '\'' || s[k] == '"') {
        quote = s[k];
      } else if (s[k] == '>') {
        break;
      }
    }
    if (k >= s.size()) return "unterminated tag at " + std::to_string(lt);
    const std::string tag = s.substr(lt + 1, k - lt - 1);
    i = k + 1;
    if (tag.empty()) return "empty tag";
    if (tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (stack.empty() || stack.back() != name)
        return "</" + name + "> closes <" + (stack.empty() ? "nothing" : stack.back()) + ">";
      stack.pop_back();
      continue;
    }
    const std::string name = tag.substr(0, tag.find_first_of(" \n\t/"));
    if (stack.empty()) {
      if (roots++ > 0) return "a second root element <" + name + ">";
      if (name != "svg") return "the root element is <" + name + ">, not <svg>";
    }
    if (tag.back() != '/') stack.push_back(name);
  }
  if (!stack.empty()) return "<" + stack.back() + "> is never closed";
  if (roots != 1) return "no root element";
  return "";
}

// The value of attribute `name` in the first tag at or after `from` that has it, before `to`.
std::string attr(const std::string& s, const std::string& name, size_t from = 0,
                 size_t to = std::string::npos) {
  const size_t p = s.find(" " + name + "='", from);
  if (p == std::string::npos || p >= to) return "";
  const size_t start = p + name.size() + 3;
  return s.substr(start, s.find('\'', start) - start);
}

std::string unescape(std::string s) {
  const std::pair<std::string, std::string> ents[] = {
      {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}, {"&amp;", "&"}};
  for (const auto& [e, c] : ents)
    for (size_t p; (p = s.find(e)) != std::string::npos;) s.replace(p, e.size(), c);
  return s;
}

// All text content of an element (tags removed, entities decoded).
std::string text_of(const std::string& s) {
  std::string out;
  bool in_tag = false;
  for (char c : s) {
    if (c == '<')
      in_tag = true;
    else if (c == '>')
      in_tag = false;
    else if (!in_tag)
      out += c;
  }
  return unescape(out);
}

struct Box {
  std::set<std::string> classes;
  std::string title;  // the tooltip, decoded
  std::string text;   // the visible text
  std::string stroke, dash;
  double x = 0, y = 0, w = 0, h = 0;
};

// Every drawn box: a <g class='...'> holding a <rect> (and text). Legend swatches are bare rects.
std::vector<Box> boxes_of(const std::string& svg) {
  std::vector<Box> out;
  for (size_t p = 0; (p = svg.find("<g class='", p)) != std::string::npos;) {
    const size_t end = svg.find("</g>", p);
    const std::string g = svg.substr(p, end - p);
    Box b;
    std::istringstream cls(attr(g, "class"));
    for (std::string c; cls >> c;) b.classes.insert(c);
    const size_t t0 = g.find("<title>"), t1 = g.find("</title>");
    if (t0 != std::string::npos && t1 != std::string::npos)
      b.title = unescape(g.substr(t0 + 7, t1 - t0 - 7));
    const size_t r = g.find("<rect");
    b.stroke = attr(g, "stroke", r), b.dash = attr(g, "stroke-dasharray", r, g.find('>', r));
    b.x = std::stod(attr(g, "x", r)), b.y = std::stod(attr(g, "y", r));
    b.w = std::stod(attr(g, "width", r)), b.h = std::stod(attr(g, "height", r));
    b.text = text_of(t1 == std::string::npos ? g : g.substr(t1));
    out.push_back(b);
    p = end;
  }
  return out;
}

std::vector<std::string> split(const std::string& s, const std::string& sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t p; (p = s.find(sep, start)) != std::string::npos; start = p + sep.size())
    out.push_back(s.substr(start, p - start));
  out.push_back(s.substr(start));
  return out;
}

std::string short_name(const std::string& n) {
  return n.rfind("layers.0.", 0) == 0 ? n.substr(9) : n;
}

// ------------------------------------------------------------------------------------------------
// The cases: every preset, with the architecture switches, and a few custom placements.

struct Case {
  Args args;
  ModelConfig cfg;
  std::string name() const {
    std::string s;
    for (const auto& a : args) s += (s.empty() ? "" : " ") + a;
    return s;
  }
};

std::vector<Case> all_cases() {
  std::vector<Case> out;
  for (const std::string& preset : scalevec::scale_strategy_names())
    for (bool qk : {false, true})
      for (bool post : {false, true}) {
        Case c;
        c.args = {"--scale", preset};
        if (qk) c.args.push_back("--qk-norm");
        if (post) c.args.push_back("--post-norm");
        c.cfg = scalevec::model_preset("tiny");
        c.cfg.set_scale(preset);
        c.cfg.sc.qk_norm = qk, c.cfg.sc.post_norm = post;
        out.push_back(c);
      }
  auto custom = [&](Args args, auto edit) {
    Case c{args, scalevec::model_preset("tiny")};
    edit(c.cfg);
    out.push_back(c);
  };
  using scalevec::parse_branches;
  // A magnitude that a later norm cancels, kept: β's gradient is structurally zero (dashed).
  custom({"--scale", "unified", "--keep-cancelled-magnitude"}, [](ModelConfig& c) {
    c.set_scale("unified");
    c.sc.skip_cancelled_magnitude = false, c.scale = "custom";
  });
  // DNP on branches of one head (v, up), DP on q, HG on; one layer.
  custom({"--dnp", "v,up", "--dp", "q", "--hg", "--layers", "1"}, [&](ModelConfig& c) {
    c.sc.dnp = parse_branches("v,up"), c.sc.dp = parse_branches("q"), c.sc.hg = true;
    c.n_layer = 1, c.scale = "custom";
  });
  custom({"--scale", "dp", "--scale-param", "magdir-normalized", "--qk-norm", "--preset", "small"},
         [](ModelConfig& c) {
           c = scalevec::model_preset("small");
           c.set_scale("dp");
           c.sc.param = scalevec::ScaleParam::MagDirNormalized, c.sc.qk_norm = true,
           c.scale = "custom";
         });
  return out;
}

// The error the config itself raises, or "" when it is valid.
std::string config_error(const ModelConfig& c) {
  try {
    c.validate();
  } catch (const scalevec::Error& e) {
    return e.what();
  }
  return "";
}

// Checks one figure against the model built from the same config.
void check_figure(const Case& c, const std::string& svg) {
  SCOPED_TRACE(c.name());
  ASSERT_EQ(check_xml(svg), "");
  EXPECT_NE(svg.find("font-family='DejaVu Sans, Helvetica, Arial, sans-serif'"), std::string::npos);
  EXPECT_EQ(attr(svg, "width"), "900.0");

  const scalevec::Transformer<float> model(c.cfg, 0);
  std::map<std::string, const ParamInfo*> expected;  // layer 0's and the final norm's scales
  for (const auto& p : model.layout().params())
    if (p.role == scalevec::Role::Scale &&
        (p.name.rfind("layers.0.", 0) == 0 || p.name.rfind("final_norm.", 0) == 0))
      expected[p.name] = &p;

  const std::vector<Box> boxes = boxes_of(svg);
  std::set<std::string> seen;
  std::map<std::string, std::set<std::string>> stroke_of_class;  // "input"/"output" -> strokes
  bool any_zero = false;
  int scale_boxes = 0;
  for (const Box& b : boxes) {
    if (!b.classes.count("scale")) continue;
    scale_boxes++;
    const bool input = b.classes.count("input") > 0, output = b.classes.count("output") > 0;
    EXPECT_NE(input, output) << "a scale box is either Input or Output: " << b.title;
    stroke_of_class[input ? "input" : "output"].insert(b.stroke);
    // The first line of the tooltip names the box's parameters.
    const auto names = split(b.title.substr(0, b.title.find('\n')), ", ");
    bool zero = false;
    for (const auto& n : names) {
      auto it = expected.find(n);
      ASSERT_NE(it, expected.end()) << "a scale box for '" << n << "', which is not a scale "
                                    << "parameter of layer 0 or the final norm";
      EXPECT_TRUE(seen.insert(n).second) << n << " is drawn twice";
      EXPECT_EQ(it->second->scale_type == scalevec::ScaleType::Input, input)
          << n << ": colour class does not match its type";
      zero = zero || !it->second->note.empty();
    }
    // Its name is written in the box, without the layers.0. prefix: "attn_norm.q.gamma", or
    // "attn_norm.q.{beta,alpha}" for the two parameters of a magdir scale.
    const std::string leaf = short_name(names.back());
    const std::string label =
        names.size() == 1 ? leaf : leaf.substr(0, leaf.rfind('.')) + ".{beta,alpha}";
    EXPECT_NE(b.text.find(label), std::string::npos)
        << "box text '" << b.text << "' lacks " << label;
    EXPECT_EQ(b.classes.count("zero-grad") > 0, zero) << b.title;
    EXPECT_EQ(!b.dash.empty(), zero) << "dashed border iff structurally zero gradient: " << b.title;
    any_zero = any_zero || zero;
  }
  for (const auto& [n, p] : expected) EXPECT_TRUE(seen.count(n)) << n << " has no box";
  // Nothing else is marked as a scale box (a box the parser could not read would show up here).
  size_t marked = 0;
  for (size_t p = 0; (p = svg.find("class='scale", p)) != std::string::npos; p++) marked++;
  EXPECT_EQ(marked, (size_t)scale_boxes);
  // One colour per type, the same as the legend's swatch, and different between the types.
  for (const std::string t : {"input", "output"}) {
    const size_t sw = svg.find("class='legend " + t + "'");
    ASSERT_NE(sw, std::string::npos) << "no legend entry for " << t;
    const std::string legend_stroke = attr(svg, "stroke", sw);
    EXPECT_LE(stroke_of_class[t].size(), 1u) << t << " boxes in several colours";
    for (const auto& s : stroke_of_class[t]) EXPECT_EQ(s, legend_stroke) << t;
  }
  EXPECT_NE(attr(svg, "stroke", svg.find("class='legend input'")),
            attr(svg, "stroke", svg.find("class='legend output'")));
  EXPECT_EQ(svg.find("class='legend zero-grad'") != std::string::npos, any_zero);

  // Normalizations without a scale of their own are drawn as plain norm boxes: the two input
  // norms and the final one, and every output-side or post norm whose scale is the identity.
  const auto& blk = model.blocks()[0];
  int plain_norms = 3;
  auto count = [&](const scalevec::OutputSide<float>& o) {
    plain_norms += o.has_norm() && o.norm_scale().identity();
  };
  for (const auto& br : blk.qkv()) count(br.out_side);
  for (const auto& br : blk.gate_up()) count(br.out_side);
  count(blk.post_attn()), count(blk.post_mlp());
  EXPECT_EQ(std::count_if(boxes.begin(), boxes.end(),
                          [](const Box& b) { return b.classes.count("norm"); }),
            plain_norms);

  // No two boxes overlap.
  for (size_t i = 0; i < boxes.size(); i++)
    for (size_t j = i + 1; j < boxes.size(); j++) {
      const Box &a = boxes[i], &b = boxes[j];
      const bool apart =
          a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y;
      EXPECT_TRUE(apart) << "boxes overlap: '" << a.text << "' and '" << b.text << "'";
    }
}

// ------------------------------------------------------------------------------------------------

TEST(Diagram, EveryScaleOfTheLayoutIsOneBox) {
  int valid = 0, refused = 0;
  for (const Case& c : all_cases()) {
    const std::string err = config_error(c.cfg);
    const Result r = run(Args{"diagram"} + c.args);
    if (!err.empty()) {  // a combination the config refuses: the diagram refuses it the same way
      SCOPED_TRACE(c.name());
      expect_error(r, err);
      refused++;
      continue;
    }
    ASSERT_TRUE(r.exited && r.code == 0) << c.name() << "\n" << r;
    EXPECT_EQ(r.err, "");
    check_figure(c, r.out);
    valid++;
  }
  EXPECT_EQ(refused, 4);  // dnp and unified with --qk-norm, with and without --post-norm
  EXPECT_GE(valid, 30);
}

TEST(Diagram, ScaleNoneHasNoScaleBoxesButItsNorms) {
  const Result r = run({"diagram", "--scale", "none", "--qk-norm", "--post-norm"});
  ASSERT_TRUE(r.exited && r.code == 0) << r;
  EXPECT_EQ(r.out.find("class='scale"), std::string::npos);
  // Two input norms, the final norm, q's and k's QK-Norm, two post-norms.
  const auto boxes = boxes_of(r.out);
  EXPECT_EQ(std::count_if(boxes.begin(), boxes.end(),
                          [](const Box& b) { return b.classes.count("norm"); }),
            7);
}

TEST(Diagram, DeterministicAndSameBytesToFileAndStdout) {
  std::string tmpl = (fs::temp_directory_path() / "scalevec_diagram_XXXXXX").string();
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  const fs::path dir = tmpl;
  for (const Args& a : {Args{"--scale", "unified", "--post-norm"}, Args{}}) {
    const Result r1 = run(Args{"diagram"} + a), r2 = run(Args{"diagram", "--out", "-"} + a);
    const Result r3 = run(Args{"diagram", "--out", (dir / "f.svg").string()} + a);
    ASSERT_TRUE(r1.exited && r1.code == 0) << r1;
    EXPECT_EQ(r1.out, r2.out);
    EXPECT_OK(r3);
    EXPECT_EQ(r3.out, "");
    EXPECT_EQ(read_file(dir / "f.svg"), r1.out);
  }
  // --title replaces the title, escaped.
  const Result t = run({"diagram", "--title", "a <b> & c"});
  EXPECT_NE(t.out.find("a &lt;b&gt; &amp; c"), std::string::npos);
  EXPECT_EQ(check_xml(t.out), "");
  std::error_code ec;
  fs::remove_all(dir, ec);
}

TEST(Diagram, Help) {
  const Result r = run({"diagram", "--help"});
  EXPECT_OK(r);
  for (const char* flag :
       {"--out", "--title", "--preset", "--scale", "--qk-norm", "--post-norm", "--hg"})
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
}

TEST(Diagram, BadInput) {
  expect_error(run({"diagram", "--bogus"}), "--bogus");
  expect_error(run({"diagram", "--scale", "frobnicate"}), "frobnicate");
  expect_error(run({"diagram", "--preset", "huge"}), "huge");
  expect_error(run({"diagram", "--scale", "dnp", "--qk-norm"}), "DNP on q/k already is a QK-Norm");
  expect_error(run({"diagram", "--out", "/nonexistent-dir/x.svg"}), "cannot write");
}

}  // namespace
