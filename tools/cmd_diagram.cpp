// scalevec diagram: one Pre-Norm block (layer 0) and, compactly, the model around it (embedding ->
// L blocks -> final norm -> head) as a self-contained SVG, with every scale vector drawn as a box
// on the path where it acts, coloured by its type (Input / Output) and named after its parameters.
//
// The picture is read off the model's own structure, never written per preset: the command builds
// the model (parameters only) and walks the modules the forward pass uses,
//
//   block.attn_in() / mlp_in()    InputSideScale: its groups (one γ shared by all branches, or HG's
//                                 one γ per branch) and which branch reads which group
//   block.qkv() / gate_up()       LinearBranch: W_f and its OutputSide (DP's u after W_f; a
//                                 normalization N_h with DNP's u / QK-Norm's γ, per head for q, k)
//   block.post_attn() / post_mlp()  the optional post-sublayer norms γ ⊙ N(·)
//   model.final_in()              the final norm's γ in front of the head
//
// and looks every scale vector's parameters up in the layout by offset: their names, their type
// (ParamInfo::scale_type) and whether their gradient is structurally zero (ParamInfo::note). The
// fixed operations between them (RoPE on q and k, causal attention, SwiGLU, the residual adds) are
// those of Block::forward. A stage that no branch uses takes no row, so each figure is as tall as
// its strategy needs.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>

#include "commands.h"
#include "diagram_svg.h"
#include "ref/common.h"
#include "ref/model/transformer.h"

namespace scalevec {
namespace {

using namespace diagram;
using Model = Transformer<float>;

// ---------------------------------------------------------------------------------------------
// Geometry (px) and colours.

constexpr double kWidth = 900;
constexpr double kResX = 80;                     // the residual stream's vertical line
constexpr double kColW = 166, kColGap = 16;      // one column per linear branch
constexpr double kCx = 425;                      // centre of the branch columns (the "trunk")
constexpr double kTrunkW = 200;                  // boxes on the trunk (N, W_o, post-norm)
constexpr double kBoxH = 32, kGap = 18;          // box height, vertical gap between rows
constexpr double kFrameX0 = 20, kFrameX1 = 700;  // the block's frame
constexpr double kLegendX = 714;                 // the legend, right of the block
constexpr double kPlusR = 9;                     // radius of a residual "+"

const Style kInputStyle{"#dcebf7", "#0072b2", 1.6};   // Input-type scale (Okabe–Ito blue)
const Style kOutputStyle{"#fbe1d0", "#d55e00", 1.6};  // Output-type scale (Okabe–Ito vermilion)
const Style kNormStyle{"#e4e4e4", "#555555", 1.3};    // a normalization (no parameters)
const Style kOpStyle{"#fafafa", "#aaaaaa", 1.0};      // other parameter-free operations
const Style kLinearStyle{"#ffffff", "#333333", 1.3};  // a linear map W
const std::string kZeroGradDash = "5,3";              // structurally zero gradient

// The name without the "layers.0." prefix (the diagram shows layer 0; every block is alike).
std::string short_name(const std::string& name) {
  const std::string p = "layers.0.";
  return name.rfind(p, 0) == 0 ? name.substr(p.size()) : name;
}

// ---------------------------------------------------------------------------------------------
// What the model says about one scale vector.

// Parameters by their offset in the flat buffer (ScaleVector and LinearBranch keep offsets).
class ParamIndex {
 public:
  explicit ParamIndex(const ParamLayout& L) {
    for (const auto& p : L.params()) by_offset_[p.offset] = &p;
  }
  const ParamInfo& at(size_t offset) const {
    auto it = by_offset_.find(offset);
    require(it != by_offset_.end(), "diagram: no parameter at offset {}", offset);
    return *it->second;
  }

 private:
  std::map<size_t, const ParamInfo*> by_offset_;
};

// One scale vector as a box shows it.
struct ScaleBox {
  std::vector<const ParamInfo*> params;  // γ (or u), or β and α
  ScaleType type = ScaleType::Input;
  bool zero_grad = false;  // some parameter's gradient is structurally zero
  std::string label;       // e.g. "attn_norm.q.gamma", "attn.q_dnp.{beta,alpha}"
  std::string value;       // its parameterization: "γ", "u", "β·α", "(β·α/rms(α))"
  int dim = 0;
};

ScaleBox describe(const ScaleVector<float>& s, const ParamIndex& ix) {
  ScaleBox b;
  b.dim = s.dim();
  const ParamInfo& main = ix.at(s.offset());  // γ / u, or α
  if (s.kind() == ScaleParam::Gamma) {
    b.params = {&main};
    b.label = short_name(main.name);
    const std::string symbol = main.name.substr(main.name.rfind('.') + 1);
    b.value = symbol == "gamma" ? "γ" : symbol;
  } else {  // magdir kinds: β then α
    b.params = {&ix.at(s.beta_offset()), &main};
    const std::string base = short_name(main.name.substr(0, main.name.rfind('.')));
    b.label = base + ".{beta,alpha}";
    b.value = s.kind() == ScaleParam::MagDir ? "β·α" : "(β·α/rms(α))";
  }
  b.type = main.scale_type;
  for (const ParamInfo* p : b.params) b.zero_grad = b.zero_grad || !p->note.empty();
  return b;
}

// The tooltip: parameter names on the first line (the test reads them there), then the type,
// where it folds (or why it cannot), and any note.
std::string tooltip(const ScaleBox& b) {
  std::string names, t;
  for (const ParamInfo* p : b.params) names += (names.empty() ? "" : ", ") + p->name;
  t = names + "\n" + scale_type_name(b.type) + "-type scale, " + std::to_string(b.dim) +
      " channels; folds into: " + b.params.back()->fold;
  for (const ParamInfo* p : b.params)
    if (!p->note.empty()) t += "\n" + p->name + ": " + p->note;
  return t;
}

// A W box's two lines: "W_{q}" and "attn.wq · 128×128", from the matrix's own name and shape.
std::pair<std::string, std::string> matrix_text(const ParamInfo& w) {
  std::string leaf = w.name.substr(w.name.rfind('.') + 1);  // "wq", "w_gate", "head"
  std::string sym = "W_{" + leaf + "}";
  if (leaf.rfind("w_", 0) == 0)
    sym = "W_{" + leaf.substr(2) + "}";
  else if (leaf.size() > 1 && leaf[0] == 'w')
    sym = "W_{" + leaf.substr(1) + "}";
  std::string shape = w.shape.size() == 2 ? fmt::format(" · {}×{}", w.shape[0], w.shape[1]) : "";
  return {sym, short_name(w.name) + shape};
}

// ---------------------------------------------------------------------------------------------
// The drawing: a cursor that moves down row by row, and the boxes it places.

// Counts of the boxes drawn, for the legend.
struct Tally {
  int input = 0, output = 0, zero_grad = 0;
  size_t input_params = 0, output_params = 0;
  int per_head_heads = 0;  // heads of a per-head normalization drawn (0: none)
};

class Drawing {
 public:
  Drawing(Svg& svg, const ParamIndex& ix) : svg_(svg), ix_(ix) {}

  // The centre y of the next row; moves the cursor below it.
  double next_row() {
    const double cy = y_ + kBoxH / 2;
    y_ += kBoxH + kGap;
    return cy;
  }
  double y() const { return y_; }
  void skip(double dy) { y_ += dy; }
  const Tally& tally() const { return tally_; }

  // A scale vector's box: "<value> ⊙ <arg>" and its name, coloured by type, dashed when a
  // parameter's gradient is structurally zero.
  void scale(double cx, double cy, double w, const ScaleVector<float>& s, const std::string& arg) {
    const ScaleBox b = describe(s, ix_);
    Style st = b.type == ScaleType::Input ? kInputStyle : kOutputStyle;
    std::string cls = b.type == ScaleType::Input ? "scale input" : "scale output";
    if (b.zero_grad) st.dash = kZeroGradDash, cls += " zero-grad", tally_.zero_grad++;
    svg_.box(cx, cy, w, kBoxH, st, b.value + " ⊙ " + arg, b.label, tooltip(b), cls);
    size_t n = 0;
    for (const ParamInfo* p : b.params) n += p->numel;
    if (b.type == ScaleType::Input)
      tally_.input++, tally_.input_params += n;
    else
      tally_.output++, tally_.output_params += n;
  }
  // A normalization without a scale of its own.
  void norm(double cx, double cy, double w, const std::string& text, const std::string& note = "") {
    svg_.box(cx, cy, w, kBoxH, kNormStyle, text, note, "", "norm");
  }
  void op(double cx, double cy, double w, const std::string& text, const std::string& note = "") {
    svg_.box(cx, cy, w, kBoxH, kOpStyle, text, note, "", "op");
  }
  // A linear map (or the embedding table): its symbol, its name and shape. `symbol` overrides the
  // W_{...} made from the name.
  void matrix(double cx, double cy, double w, size_t offset, const std::string& symbol = "") {
    const ParamInfo& p = ix_.at(offset);
    auto [sym, sub] = matrix_text(p);
    if (!symbol.empty()) sym = symbol;
    Style st = kLinearStyle;
    st.bold = true;
    svg_.box(cx, cy, w, kBoxH, st, sym, sub, p.name, "linear");
  }

  // The output-side stages of one branch or of a post-norm (DP's u in the row centred at dp_row,
  // then N_h with its scale at norm_row); `what` names a normalization that has no scale. Returns
  // the bottom centre of the last stage drawn.
  Point output_side(const OutputSide<float>& o, double cx, double w, Point from, double dp_row,
                    double norm_row, const std::string& what) {
    if (!o.dp().identity()) {
      arrow_to(from, {cx, dp_row - kBoxH / 2});
      scale(cx, dp_row, w, o.dp(), "·");
      from = {cx, dp_row + kBoxH / 2};
    }
    if (o.has_norm()) {
      const std::string n = o.heads() > 1 ? "N_{h}(·)" : "N(·)";
      arrow_to(from, {cx, norm_row - kBoxH / 2});
      if (o.heads() > 1) tally_.per_head_heads = o.heads();
      if (o.norm_scale().identity())
        norm(cx, norm_row, w, n, what + (o.heads() > 1 ? " per head" : ""));
      else
        scale(cx, norm_row, w, o.norm_scale(), n);
      from = {cx, norm_row + kBoxH / 2};
    }
    return from;
  }

  // An arrow from `from` (the bottom of a box) to `to` (the top of a box below): straight down, or
  // with an elbow just below `from` when the two are in different columns (a fan-out).
  void arrow_to(Point from, Point to) {
    if (std::abs(from.x - to.x) < 0.5) {
      svg_.arrow({from, to});
    } else {
      const double ys = from.y + kGap / 2;
      svg_.arrow({from, {from.x, ys}, {to.x, ys}, to});
    }
  }

 private:
  Svg& svg_;
  const ParamIndex& ix_;
  double y_ = 0;
  Tally tally_;
};

// One sublayer as the drawing needs it: its input-side scale, its branches (one column each),
// the operation that joins them, the output matrix and the optional post-norm.
struct SublayerView {
  std::string name;  // "attention", "MLP"
  const InputSideScale<float>* in = nullptr;
  std::vector<const LinearBranch<float>*> branches;  // in branch order
  std::vector<bool> rope;                            // per branch: RoPE after its output side
  std::string join, join_note;                       // the operation that joins the branches
  size_t w_out = 0;                                  // W_o / W_down
  const OutputSide<float>* post = nullptr;
};

// Draws one sublayer below the cursor: the tap from the residual stream, N(x), the input-side
// scale(s), the branches, the join, the output matrix and post-norm, and the arrow back into the
// residual "+". Returns the y of the tap and of the "+".
std::pair<double, double> draw_sublayer(Svg& svg, Drawing& d, const SublayerView& s) {
  const int nb = (int)s.branches.size();
  std::vector<double> col(nb);
  for (int f = 0; f < nb; f++) col[f] = kCx + (f - (nb - 1) / 2.0) * (kColW + kColGap);
  const double span_w = nb * kColW + (nb - 1) * kColGap;

  // Which rows exist: a stage takes a row only when some branch has it.
  const auto& groups = s.in->groups();
  std::vector<int> members(groups.size(), 0);
  for (int f = 0; f < nb; f++) members[s.in->group_of(f)]++;
  bool shared_row = false, branch_row = false, dp_row = false, norm_row = false, rope_row = false;
  bool both = false;  // some branch has DP's u and a normalization: they need a row each
  for (size_t g = 0; g < groups.size(); g++)
    if (!groups[g].identity()) (members[g] > 1 ? shared_row : branch_row) = true;
  for (int f = 0; f < nb; f++) {
    dp_row = dp_row || !s.branches[f]->out_side.dp().identity();
    norm_row = norm_row || s.branches[f]->out_side.has_norm();
    both = both || (!s.branches[f]->out_side.dp().identity() && s.branches[f]->out_side.has_norm());
    rope_row = rope_row || s.rope[f];
  }

  // N(x), fed by a tap on the residual stream.
  const double y_n = d.next_row();
  d.norm(kCx, y_n, kTrunkW, "RMSNorm N(x) = x / rms(x)");
  svg.circle({kResX, y_n}, 3.2, "#444444");
  svg.arrow({{kResX, y_n}, {kCx - kTrunkW / 2, y_n}});
  svg.text(kResX + 12, y_n - 7, s.name, 12, "start", "#222222", true);
  const Point n_out{kCx, y_n + kBoxH / 2};

  // Input side: a group read by several branches is one box centred over them (the shared γ: all
  // branches fan out below it); a group of one branch sits in that branch's column (HG).
  std::vector<Point> from(nb, n_out);  // where each column's data comes from
  const double y_shared = shared_row ? d.next_row() : 0;
  const double y_branch = branch_row ? d.next_row() : 0;
  for (size_t g = 0; g < groups.size(); g++) {
    if (groups[g].identity()) continue;
    double lo = 1e9, hi = -1e9;
    for (int f = 0; f < nb; f++)
      if (s.in->group_of(f) == (int)g) lo = std::min(lo, col[f]), hi = std::max(hi, col[f]);
    const double cx = (lo + hi) / 2, cy = members[g] > 1 ? y_shared : y_branch;
    const double w = members[g] > 1 ? kTrunkW : kColW;
    d.arrow_to(n_out, {cx, cy - kBoxH / 2});
    d.scale(cx, cy, w, groups[g], "·");
    for (int f = 0; f < nb; f++)
      if (s.in->group_of(f) == (int)g) from[f] = {cx, cy + kBoxH / 2};
  }

  // The linear maps, then each branch's output side.
  const double y_w = d.next_row();
  // The output side: one row per stage, or one row for all when no branch has two stages (DNP's
  // u ⊙ N_h on q, k next to DP's u on v).
  const double y_dp = dp_row ? d.next_row() : 0;
  const double y_norm = norm_row && (both || !dp_row) ? d.next_row() : y_dp;
  const double y_rope = rope_row ? d.next_row() : 0;
  std::vector<Point> end(nb);
  for (int f = 0; f < nb; f++) {
    d.arrow_to(from[f], {col[f], y_w - kBoxH / 2});
    d.matrix(col[f], y_w, kColW, s.branches[f]->w);
    end[f] = d.output_side(s.branches[f]->out_side, col[f], kColW, {col[f], y_w + kBoxH / 2}, y_dp,
                           y_norm, "RMSNorm");
    if (s.rope[f]) {
      d.arrow_to(end[f], {col[f], y_rope - kBoxH / 2});
      d.op(col[f], y_rope, 90, "RoPE");
      end[f] = {col[f], y_rope + kBoxH / 2};
    }
  }

  // The join (attention / SwiGLU) spans the columns; every branch enters it from above.
  const double y_join = d.next_row();
  for (int f = 0; f < nb; f++) d.arrow_to(end[f], {col[f], y_join - kBoxH / 2});
  d.op(kCx, y_join, span_w, s.join, s.join_note);

  // The output matrix and the optional post-norm.
  const double y_out = d.next_row();
  d.arrow_to({kCx, y_join + kBoxH / 2}, {kCx, y_out - kBoxH / 2});
  d.matrix(kCx, y_out, kTrunkW, s.w_out);
  Point last{kCx, y_out + kBoxH / 2};
  if (!s.post->identity()) {
    const double y_pdp = s.post->dp().identity() ? 0 : d.next_row();
    const double y_pn = s.post->has_norm() ? d.next_row() : 0;
    last = d.output_side(*s.post, kCx, kTrunkW, last, y_pdp, y_pn, "post-sublayer RMSNorm");
  }

  // Back into the residual stream.
  const double y_plus = last.y + kGap + 4;
  svg.arrow({last, {kCx, y_plus}, {kResX + kPlusR, y_plus}});
  svg.circle({kResX, y_plus}, kPlusR, "#ffffff", "#333333");
  svg.text(kResX, y_plus + 4.5, "+", 14, "middle", "#111111", true, false);
  d.skip(y_plus + kPlusR + kGap - d.y());
  return {y_n, y_plus};
}

// The legend, right of the block: the colours, the marks, and what this figure holds.
double draw_legend(Svg& svg, double y, const Tally& t, const Model& model) {
  const double x = kLegendX, sw = 26, tx = x + sw + 8;
  constexpr size_t kChars = 24;  // characters per legend line at 11 px
  auto entry = [&](const Style& st, const std::string& cls, const std::string& text) {
    svg.rect(x, y - 9, sw, 16, st, 3, cls);
    for (const auto& l : wrap(text, kChars))
      svg.text(tx, y + 3, l, 11, "start", "#222222", false, false), y += 14;
    y += 8;
  };
  svg.text(x, y, "legend", 12, "start", "#222222", true);
  y += 20;
  entry(kInputStyle, "legend input",
        "Input-type scale: folds exactly into the adjacent linear map");
  entry(kOutputStyle, "legend output",
        "Output-type scale: restores the magnitude a normalization removed");
  if (t.zero_grad > 0) {
    Style z{"#ffffff", "#555555", 1.6, kZeroGradDash};
    entry(z, "legend zero-grad",
          "dashed: its magnitude β gets a structurally zero gradient (a later norm cancels it)");
  }
  entry(kNormStyle, "legend norm", "normalization, no parameters");
  entry(kLinearStyle, "legend linear", "linear map W (out × in)");
  entry(kOpStyle, "legend op", "other operation, no parameters");
  auto note = [&](const std::string& text) {
    for (const auto& l : wrap(text, kChars + 6)) svg.text(x, y, l, 11, "start", "#333333"), y += 14;
    y += 6;
  };
  const ModelConfig& c = model.config();
  if (t.per_head_heads > 0)
    note(fmt::format("N_{{h}}: RMSNorm over each of the {} heads of {} channels", t.per_head_heads,
                     c.head_size()));
  note(fmt::format("drawn: {} Input-type scale vectors ({} parameters), {} Output-type ({})",
                   t.input, t.input_params, t.output, t.output_params));
  const auto& L = model.layout();
  note(fmt::format("all {} layer{}: {} scale parameters of {} ({:.2f}%)", c.n_layer,
                   c.n_layer == 1 ? "" : "s", L.count_role(Role::Scale), L.total(),
                   100.0 * (double)L.count_role(Role::Scale) / (double)L.total()));
  note("each box's tooltip (<title>) gives its full parameter names and where it folds");
  return y;
}

std::string on_off(bool b) { return b ? "on" : "off"; }

// The whole figure.
std::string render(const Model& model, const std::string& title_arg) {
  const ModelConfig& c = model.config();
  const ScaleConfig& sc = c.sc;
  const ParamIndex ix(model.layout());
  Svg svg;
  Drawing d(svg, ix);

  // Title and the configuration it shows.
  std::string title = title_arg;
  if (title.empty()) {
    // A preset refined by component flags is recorded as "custom": no flag of that name exists.
    title = "Scale vectors in a Pre-Norm block: " +
            (c.scale == "custom" ? std::string("a custom scale strategy") : "--scale " + c.scale);
    if (sc.qk_norm) title += " --qk-norm";
    if (sc.post_norm) title += " --post-norm";
  }
  svg.text(kFrameX0, 28, title, 17, "start", "#111111", true, false);
  svg.text(kFrameX0, 47,
           fmt::format("{} layer{} · d_model {} · {} heads × {} · d_ff {} · vocab {} · one block "
                       "drawn in full (layer 0)",
                       c.n_layer, c.n_layer == 1 ? "" : "s", c.d_model, c.n_head, c.head_size(),
                       c.d_ff, c.vocab_size),
           11.5, "start", "#444444", false, false);
  svg.text(kFrameX0, 63,
           fmt::format("scale: {} · parameterization {} · {} · DP {} · DNP {} · QK-Norm {} · "
                       "post-norm {}",
                       c.scale, scale_param_name(sc.param),
                       sc.param == ScaleParam::None ? "no scale vectors"
                       : sc.hg                      ? "HG (one γ per branch)"
                                                    : "one shared γ per norm",
                       branches_to_string(sc.dp), branches_to_string(sc.dnp), on_off(sc.qk_norm),
                       on_off(sc.post_norm)),
           11.5, "start", "#444444", false, false);

  // The embedding on top of the residual stream.
  d.skip(82);
  const double y_emb = d.next_row();
  d.matrix(kResX, y_emb, 130, model.wte_offset(), "embedding");
  svg.text(kResX + 72, y_emb + 4, "tokens → x", 11, "start", "#444444", false, false);

  // Block 0 inside a frame.
  const double frame_top = d.y() - 4;
  d.skip(26);
  const Block<float>& b = model.blocks()[0];
  SublayerView attn{"attention", &b.attn_in(), {}, {}, "", "", b.w_o(), &b.post_attn()};
  for (const auto& br : b.qkv()) attn.branches.push_back(&br);
  attn.rope = {true, true, false};  // Block::forward rotates q and k
  attn.join = fmt::format("causal attention: softmax(q k^{{T}} / √{}) v", c.head_size());
  attn.join_note = fmt::format("per head: {} heads × {} channels", c.n_head, c.head_size());
  SublayerView mlp{"MLP",         &b.mlp_in(), {},           {}, "SwiGLU: h = silu(gate) ⊙ up",
                   "elementwise", b.w_down(),  &b.post_mlp()};
  for (const auto& br : b.gate_up()) mlp.branches.push_back(&br);
  mlp.rope = {false, false};
  const auto [tap1, plus1] = draw_sublayer(svg, d, attn);
  const auto [tap2, plus2] = draw_sublayer(svg, d, mlp);
  const double frame_bottom = d.y() - kGap + 6;
  svg.rect(kFrameX0, frame_top, kFrameX1 - kFrameX0, frame_bottom - frame_top,
           {"none", "#888888", 1.2, "6,4"}, 10);
  svg.text(kFrameX0 + 10, frame_top + 17,
           fmt::format("block 0 of {} (Pre-Norm; every block has this structure)", c.n_layer), 12,
           "start", "#444444", true, false);

  // The residual stream through the block.
  svg.arrow({{kResX, y_emb + kBoxH / 2}, {kResX, plus1 - kPlusR}});
  svg.arrow({{kResX, plus1 + kPlusR}, {kResX, plus2 - kPlusR}});
  (void)tap2;
  svg.vtext(kResX - 9, (tap1 + plus1) / 2, "residual stream x", 11, "#444444");

  // The other blocks, then the final norm, its scale and the head, left to right.
  d.skip(4);
  double y_prev = plus2 + kPlusR;
  if (c.n_layer > 1) {
    const double y = d.next_row();
    svg.arrow({{kResX, y_prev}, {kResX, y - kBoxH / 2}});
    d.op(kResX, y, 130, c.n_layer > 2 ? fmt::format("blocks 1–{}", c.n_layer - 1) : "block 1");
    svg.text(kResX + 72, y + 4, "the same structure, each with its own parameters", 11, "start",
             "#444444", false, false);
    y_prev = y + kBoxH / 2;
  }
  const double y_f = d.next_row();
  svg.arrow({{kResX, y_prev}, {kResX, y_f - kBoxH / 2}});
  d.norm(kResX, y_f, 130, "final N(x)");
  double x = kResX + 65;
  const InputSideScale<float>& fin = model.final_in();
  for (const auto& g : fin.groups()) {
    if (g.identity()) continue;
    svg.arrow({{x, y_f}, {x + 36, y_f}});
    d.scale(x + 36 + 85, y_f, 170, g, "·");
    x += 36 + 170;
  }
  svg.arrow({{x, y_f}, {x + 36, y_f}});
  d.matrix(x + 36 + 85, y_f, 170, model.head_offset());
  x += 36 + 170;
  svg.arrow({{x, y_f}, {x + 30, y_f}});
  svg.text(x + 36, y_f + 4, fmt::format("logits ({})", c.vocab_size), 12, "start", "#222222", false,
           false);

  // The legend last, so that its counts include every box drawn.
  const double legend_bottom = draw_legend(svg, frame_top + 18, d.tally(), model);
  const double height = std::max(d.y(), legend_bottom) + 6;
  return svg.document(kWidth, height, title);
}

}  // namespace

Action add_diagram(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "diagram",
      "Draw one Pre-Norm block (and the model around it) as an SVG block diagram, with "
      "every scale vector marked where it acts and coloured by its type");
  struct Args {
    std::string preset = "tiny", title, out;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--preset", a->preset, "architecture: " + std::string(model_preset_names()))
      ->check(CLI::IsMember(model_preset_list()))
      ->capture_default_str();
  auto mf = std::make_shared<FlagSet<ModelConfig>>(model_flags(*cmd));
  cmd->add_option("--title", a->title, "figure title [default: names the scale strategy]");
  cmd->add_option("--out", a->out, "SVG file to write ('-' or none: standard output)");
  return [=]() -> int {
    ModelConfig cfg = model_preset(a->preset);
    mf->apply(cfg);
    const Model model(cfg, 0);  // parameters only: the structure is all the drawing needs
    const std::string svg = render(model, a->title);
    if (a->out.empty() || a->out == "-") {
      std::fwrite(svg.data(), 1, svg.size(), stdout);
      return std::fflush(stdout) == 0 ? 0 : 1;
    }
    std::ofstream f(a->out, std::ios::binary | std::ios::trunc);
    require(f.good(), "cannot write '{}'", a->out);
    f << svg;
    f.close();
    require(f.good(), "writing '{}' failed", a->out);
    return 0;
  };
}

}  // namespace scalevec
