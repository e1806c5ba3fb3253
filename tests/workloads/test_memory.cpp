// Memory model: a Mixtral-8x7B breakdown checked line by line against a hand
// calculation, training state with ZeRO, MLA KV cache, and the over-capacity
// violation with its table.
#include <catch2/catch.hpp>

#include "workloads/gpu_presets.hpp"
#include "workloads/memory_model.hpp"
#include "workloads/workload_options.hpp"

using namespace moesim;

TEST_CASE("Mixtral-8x7B memory breakdown equals the hand calculation", "[workloads][memory]") {
  // Strategy: TP 2, PP 2, EP 4, DP 2, ETP 1, folded (world 2 x 2 x 2 = 8 GPUs,
  // EDP = 2 x 2 / 4 = 1), 2 micro-batches; inference prefill of a global batch
  // of 8 sequences x 1024 prompt tokens (KV cache for 1024 tokens); bf16
  // everywhere; reserve 2 GiB, NCCL buffers 512 MiB, dropless.
  const ModelSpec m = model_preset("mixtral-8x7b");
  Strategy s;
  s.tp = 2;
  s.pp = 2;
  s.ep = 4;
  s.dp = 2;
  s.microbatches = 2;
  const GpuSpec gpu = gpu_preset("gpu64");
  const WorkloadShape shape{.batch = 8, .tokens_per_sequence = 1024, .context_tokens = 1024};
  const MemoryOptions opt{};
  const MemoryReport r = estimate_memory(m, s, gpu, shape, opt);
  REQUIRE(r.stages.size() == 2);
  const MemoryBreakdown& s0 = r.stages[0];
  const MemoryBreakdown& s1 = r.stages[1];
  CHECK(s0.layers == 16);

  // Attention per layer per GPU: q + o = 2 x 4096 x 4096 = 33,554,432 / TP 2
  //   = 16,777,216; k + v = 2 x 4096 x 1024 = 8,388,608 / min(TP 2, 8 KV heads)
  //   = 4,194,304; RMSNorms 2 x 4096 = 8,192 (replicated). Sum 20,979,712
  //   elements x 16 layers = 335,675,392 x 2 B = 671,350,784 B.
  CHECK(s0.attention_weights.count() == 671'350'784);
  // Experts: 16 layers x 8 / 4 = 2 local experts x 3 x 4096 x 14336 (176,160,768)
  //   = 5,637,144,576 elements x 2 B = 11,274,289,152 B.
  CHECK(s0.expert_weights.count() == 11'274'289'152);
  // Router: 16 x 4096 x 8 = 524,288 elements x 2 B = 1,048,576 B.
  CHECK(s0.router_weights.count() == 1'048'576);
  // Embedding on stage 0 only: 32000 / 2 x 4096 = 65,536,000 x 2 B = 131,072,000 B.
  CHECK(s0.embedding_weights.count() == 131'072'000);
  CHECK(s1.embedding_weights.count() == 0);
  // LM head on the last stage: 65,536,000 + final norm 4,096 = 65,540,096 x 2 B.
  CHECK(s1.lm_head_weights.count() == 131'080'192);
  CHECK(s0.lm_head_weights.count() == 0);
  CHECK(s0.dense_ffn_weights.count() == 0);
  CHECK(s0.shared_expert_weights.count() == 0);
  // KV cache: 8 / DP 2 = 4 sequences x 1024 tokens x 16 layers x
  //   (2 x 8 KV heads x 128 / 2 TP ranks = 1024 elements) x 2 B = 134,217,728 B.
  CHECK(s0.kv_cache.count() == 134'217'728);
  // Activations (inference, one layer's working set of one micro-batch):
  //   micro-batch = 4 sequences / 2 = 2 x 1024 = T 2048 tokens;
  //   attention phase: T x 2 B x (2 x 4096 + (2 x 32 x 128)/2 + (2 x 8 x 128)/2)
  //     = 2048 x 2 x (8192 + 4096 + 1024) = 54,525,952;
  //   routed assignments per GPU R = T x k x ETP / TP = 2048 x 2 / 2 = 2048;
  //   MoE phase: T x 2 x 2 x 4096 + R x 2 x (4096 + 3 x 14336)
  //     = 33,554,432 + 192,937,984 = 226,492,416 (the peak);
  //   waiting stage input: (min(2 micro-batches, 2 stages) - 1) x 2048 x 4096 x 2
  //     = 16,777,216;
  //   stage 0: 243,269,632; stage 1 adds fp32 logits of the last token of 2
  //   sequences: 2 x 16000 x 4 = 128,000 -> 243,397,632.
  CHECK(s0.activations.count() == 243'269'632);
  CHECK(s1.activations.count() == 243'397'632);
  // Communication: dispatch + combine, send + receive: 2 x R x 4096 x (2 + 2)
  //   = 67,108,864, + NCCL 512 MiB (536,870,912) = 603,979,776.
  CHECK(s0.comm_buffers.count() == 603'979'776);
  CHECK(s0.reserve == Bytes::gib(2));
  CHECK(s0.gradients.count() == 0);
  CHECK(s0.optimizer_states.count() == 0);
  // Totals: 671,350,784 + 11,274,289,152 + 1,048,576 + 131,072,000
  //   + 134,217,728 + 243,269,632 + 603,979,776 + 2,147,483,648 = 15,206,711,296;
  // stage 1: 671,350,784 + 11,274,289,152 + 1,048,576 + 131,080,192
  //   + 134,217,728 + 243,397,632 + 603,979,776 + 2,147,483,648 = 15,206,847,488.
  CHECK(s0.total().count() == 15'206'711'296);
  CHECK(s1.total().count() == 15'206'847'488);
  CHECK(r.max_stage == 1);
  CHECK(r.fits());
  CHECK(r.capacity == Bytes::gb(64));
}

TEST_CASE("Training memory: gradients, Adam states and ZeRO sharding", "[workloads][memory]") {
  // Mixtral, TP 1, PP 1, EP 8, DP 8 folded: EDP = 8 / 8 = 1, attention DP = 8.
  const ModelSpec m = model_preset("mixtral-8x7b");
  Strategy s;
  s.tp = 1;
  s.ep = 8;
  s.dp = 8;
  const WorkloadShape shape{.batch = 8, .tokens_per_sequence = 4096, .context_tokens = 4096};
  MemoryOptions opt;
  opt.mode = MemoryMode::kTraining;
  const MemoryBreakdown z0 = estimate_memory(m, s, gpu_preset("h100-sxm"), shape, opt).stages[0];
  // Expert params per GPU: 32 layers x 1 expert x 176,160,768 = 5,637,144,576;
  // the rest: total 46,702,792,704 - 8 x that = 1,605,636,096 (attention,
  // norms, routers, embedding, head: all replicated with TP 1).
  const std::int64_t expert = 5'637'144'576;
  const std::int64_t dense = 46'702'792'704LL - 8 * expert;
  CHECK(dense == 1'605'636'096);
  CHECK(z0.params == expert + dense);
  CHECK(z0.gradients.count() == 2 * (expert + dense));
  CHECK(z0.optimizer_states.count() == 12 * (expert + dense));
  CHECK(z0.kv_cache.count() == 0);
  // ZeRO-1: the dense part's optimizer states shard over the 8 DP replicas,
  // the experts' over EDP = 1.
  opt.zero_stage = 1;
  const MemoryBreakdown z1 = estimate_memory(m, s, gpu_preset("h100-sxm"), shape, opt).stages[0];
  CHECK(z1.optimizer_states.count() == 12 * (expert + dense / 8));
  CHECK(z1.gradients.count() == z0.gradients.count());
  opt.zero_stage = 3;
  const MemoryBreakdown z3 = estimate_memory(m, s, gpu_preset("h100-sxm"), shape, opt).stages[0];
  CHECK(z3.attention_weights.count() * 8 == z0.attention_weights.count());
  CHECK(z3.gradients.count() == 2 * (expert + dense / 8));
  // Korthikanti et al.: training keeps every layer's activations, far more than
  // inference's single-layer working set.
  MemoryOptions inf;
  const MemoryBreakdown i0 = estimate_memory(m, s, gpu_preset("h100-sxm"), shape, inf).stages[0];
  CHECK(z0.activations.count() > 10 * i0.activations.count());
}

TEST_CASE("Training activations follow Korthikanti et al. for a dense-like layer", "[workloads][memory]") {
  // One GELU "expert" with top-1 and ffn = 4h, TP 1, one stage, 1 micro-batch:
  // Korthikanti et al. 2022 eq. 1 without the attention-score term (FlashAttention)
  // gives s b h x 34 bytes per layer; ours adds fp32 router logits
  // (T x experts x 4) and the routed copy of the MLP input (T x h x 2) that an
  // MoE layer keeps besides the dense layer's.
  ModelSpec m = model_preset("mixtral-8x7b");
  m.layers = 1;
  m.hidden = 1024;
  m.heads = 16;
  m.kv_heads = 16;
  m.head_dim = 64;
  m.ffn_kind = FfnKind::kGelu;
  m.expert_ffn = 4096;
  m.experts = 1;
  m.top_k = 1;
  m.vocab = 1024;
  Strategy s;
  s.ep = 1;
  s.tp = 1;
  const WorkloadShape shape{.batch = 1, .tokens_per_sequence = 512, .context_tokens = 512};
  MemoryOptions opt;
  opt.mode = MemoryMode::kTraining;
  const MemoryBreakdown b = estimate_memory(m, s, gpu_preset("h100-sxm"), shape, opt).stages[0];
  const std::int64_t T = 512;
  const std::int64_t sbh34 = 34 * T * 1024;
  const std::int64_t extra = T * 1 * 4 + T * 1024 * 2;
  const std::int64_t logits = T * 1024 * 4;
  CHECK(b.activations.count() == sbh34 + extra + logits);
}

TEST_CASE("MLA KV cache is the latent, not split by TP", "[workloads][memory]") {
  const ModelSpec m = model_preset("deepseek-v3");
  Strategy s;
  s.tp = 8;
  s.ep = 8;
  s.dp = 1;
  const WorkloadShape shape{.batch = 4, .tokens_per_sequence = 1, .context_tokens = 4096};
  const MemoryBreakdown b = estimate_memory(m, s, gpu_preset("h200"), shape, MemoryOptions{}).stages[0];
  // 4 sequences x 4096 tokens x 61 layers x 576 x 2 B (bf16 KV) = 1,151,336,448 B.
  CHECK(b.kv_cache.count() == 4LL * 4096 * 61 * 576 * 2);
  // Experts: 58 layers x 256/8 = 32 experts x 3 x 7168 x 2048 x 2 B.
  CHECK(b.expert_weights.count() == 58LL * 32 * 3 * 7168 * 2048 * 2);
  // Dense FFN (3 layers) and shared expert split over TP 8.
  CHECK(b.dense_ffn_weights.count() == 3LL * 3 * 7168 * 18432 / 8 * 2);
  CHECK(b.shared_expert_weights.count() == 58LL * 3 * 7168 * 2048 / 8 * 2);
}

TEST_CASE("Over capacity is a violation that carries the breakdown table", "[workloads][memory]") {
  // DeepSeek-V3 (671B params, ~1.34 TB in bf16) on 8 x 64 GB cannot fit.
  const ModelSpec m = model_preset("deepseek-v3");
  Strategy s;
  s.tp = 8;
  s.ep = 8;
  s.dp = 1;
  const WorkloadShape shape{.batch = 8, .tokens_per_sequence = 1024, .context_tokens = 1024};
  const ValidationResult r = validate(m, s, 8, gpu_preset("gpu64"), shape, MemoryOptions{});
  REQUIRE(r.violations.size() == 1);
  CHECK_THAT(r.violations[0], Catch::Contains("memory") && Catch::Contains("expert_weights") &&
                                  Catch::Contains("capacity") && Catch::Contains("59.60"));
  CHECK_THROWS_AS(r.throw_if_invalid(), InputError);
  // The table shows first, middle and last stage when there are many.
  s.pp = 8;
  s.tp = 1;
  s.layers_per_stage = {8, 8, 8, 8, 8, 8, 8, 5};
  const MemoryReport rep = estimate_memory(m, s, gpu_preset("gpu64"), shape, MemoryOptions{});
  const std::string table = format_memory_table(rep);
  CHECK_THAT(table, Catch::Contains("stage 0") && Catch::Contains("stage 4") && Catch::Contains("stage 7"));
  CHECK_THAT(table, !Catch::Contains("stage 2"));
  CHECK_THROWS_AS(estimate_memory(m, s, gpu_preset("gpu64"), WorkloadShape{.batch = 0}, MemoryOptions{}),
                  InputError);
}

TEST_CASE("Memory options from the config", "[workloads][memory][options]") {
  OptionRegistry reg;
  register_workload_model_options(reg);
  Config c(reg);
  MemoryOptions d = memory_options_from_config(c);
  CHECK(d.mode == MemoryMode::kInference);
  CHECK(d.reserve == Bytes::gib(2));
  CHECK(d.capacity_factor == 0.0);
  c.set("memory.mode", "training", "cli");
  c.set("memory.zero", "1", "cli");
  c.set("memory.reserve", "1GiB", "cli");
  c.set("routing.capacity_factor", "1.25", "cli");
  d = memory_options_from_config(c);
  CHECK(d.mode == MemoryMode::kTraining);
  CHECK(d.zero_stage == 1);
  CHECK(d.reserve == Bytes::gib(1));
  CHECK(d.capacity_factor == 1.25);
  CHECK_THROWS_WITH(c.set("memory.zero", "4", "cli"), Catch::Contains("memory.zero"));
}
