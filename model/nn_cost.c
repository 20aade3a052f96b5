/* Cost counts of the blocks: one term per op output, in the order the blocks run them
 * (model/nn_attn.c, nn_mlp.c, nn_layer.c). */
#include "model/nn_cost.h"

void nn_cost_add(nn_cost *a, nn_cost b) {
  a->flops_weight += b.flops_weight;
  a->flops_attn += b.flops_attn;
  a->act_floats += b.act_floats;
  a->nograd_floats += b.nograd_floats;
}

nn_cost nn_cost_scale(nn_cost a, double k) {
  return (nn_cost){a.flops_weight * k, a.flops_attn * k, a.act_floats * k, a.nograd_floats * k};
}

nn_cost nn_cost_linear(int64_t in, int64_t out, bool bias, int64_t rows) {
  double r = (double)rows, o = (double)out;
  return (nn_cost){2.0 * (double)in * o * r, 0, (bias ? 2.0 : 1.0) * o * r, 0};
}

/* Per position: values of the attention block's outputs (before the output projection's). */
static nn_cost attn_cost(const nn_attn_cfg *a, int64_t seq, bool causal) {
  double t = (double)seq;
  double hd = (double)(a->head_dim ? a->head_dim : a->hidden / a->heads);
  double q = (double)a->heads * hd, kv = (double)(a->kv_heads ? a->kv_heads : a->heads) * hd;
  nn_cost c = nn_cost_linear(a->hidden, (int64_t)(q + 2 * kv), a->qkv_bias, seq);
  double per = 0, qk = q; /* qk: width of the scores' dot products */
  if (!a->rel_pos && (a->fused_qkv || a->pack)) {
    /* vt_attention_qkv reads the one projection output: q, k, v in head layout (rotated
     * on the way), the output in heads, its logsumexp, and the output in o_proj's layout */
    per += q + 2 * kv + q + (double)a->heads + q;
    c.act_floats += per * t;
    c.nograd_floats += (q + 2 * kv + q + (double)a->heads) * t; /* only the output has one */
    double square = t * t * (causal ? 0.5 : 1.0);
    c.flops_attn += 2.0 * square * (qk + q);
    nn_cost_add(&c, nn_cost_linear((int64_t)q, a->hidden, a->o_bias, seq));
    return c;
  }
  if (a->fused_qkv || a->pack) per += q + 2 * kv; /* the slices of the one output */
  if (a->rope_theta > 0) per += q + kv;           /* rotated q and k */
  if (a->rel_pos) {
    nn_cost p = nn_cost_linear(a->hidden, (int64_t)q, false, seq); /* linear_pos on the table */
    nn_cost_add(&c, p);
    per += q /* broadcast */ + 2 * q /* q + u, q + v */ + 2 * q /* concatenated q' */ +
           (q + kv) /* concatenated k' */;
    qk = 2 * q;
  }
  per += (a->rel_pos ? 3 * q : q) + 2 * kv; /* q, k, v permuted to heads (q', k' wider) */
  per += q + (double)a->heads;              /* attention output and its logsumexp */
  per += q;                                 /* permuted back */
  c.act_floats += per * t;
  /* S = Q K^T and O = P V per head over the square; causal keeps half of it */
  double square = t * t * (causal ? 0.5 : 1.0);
  c.flops_attn += 2.0 * square * (qk + q);
  nn_cost_add(&c, nn_cost_linear((int64_t)q, a->hidden, a->o_bias, seq));
  return c;
}

static nn_cost mlp_cost(const nn_mlp_cfg *m, int64_t seq) {
  double t = (double)seq, f = (double)m->hidden;
  nn_cost c;
  if (m->gated) {
    c = nn_cost_linear(m->dim, 2 * m->hidden, m->bias, seq);
    if (m->pack && m->act == NN_ACT_SILU)
      c.act_floats += f * t; /* vt_swiglu's product, straight from the packed output */
    else
      c.act_floats += (m->pack ? 2 * f : 0) * t + 2 * f * t; /* slices; act, product */
  } else {
    c = nn_cost_linear(m->dim, m->hidden, m->bias, seq);
    c.act_floats += f * t * (m->dropout > 0 ? 2 : 1); /* act (and its dropout) */
  }
  nn_cost_add(&c, nn_cost_linear(m->hidden, m->dim, m->bias, seq));
  return c;
}

nn_cost nn_cost_layer(const nn_layer_cfg *c, int64_t seq, bool causal) {
  double t = (double)seq, h = (double)c->attn.hidden;
  nn_cost out = {0};
  /* each branch: norm (its output, the normalised input and a per-row statistic), the block,
   * dropout, layer scale, the residual add */
  double branch = 2 * h + 1 + (c->dropout > 0 ? h : 0) + (c->layer_scale ? h : 0) + h;
  out.act_floats = 2 * branch * t;
  nn_cost_add(&out, attn_cost(&c->attn, seq, causal));
  nn_cost_add(&out, mlp_cost(&c->mlp, seq));
  return out;
}
