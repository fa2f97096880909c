#include "nn/onednn_kernels.h"

#include <gtest/gtest.h>

#include <thread>

#include "nn/model.h"

namespace mlaas::nn {
namespace {

// Debian's libdnnl-dev is one of install-deps.sh's packages: this build must pack.
TEST(PackedLinearTest, ThisBuildPacks) { EXPECT_TRUE(PackedLinearAvailable()); }

// The other tests need oneDNN (a build without it keeps libtorch's path, tested elsewhere);
// bfloat16 kernels need AVX-512 (without it Make() correctly returns null).
#define REQUIRE_ONEDNN() \
  if (!PackedLinearAvailable()) GTEST_SKIP() << "built without oneDNN"

TEST(PackedLinearTest, MatchesLibtorchsLinearForEveryRowCount) {
  REQUIRE_ONEDNN();
  torch::manual_seed(3);
  for (auto [in, out] : {std::pair<int64_t, int64_t>{16, 24}, {256, 768}, {1024, 256}, {33, 7}}) {
    torch::Tensor w = torch::randn({out, in}), b = torch::randn({out});
    auto with_bias = PackedLinear::Make(w, b);
    auto without = PackedLinear::Make(w, torch::Tensor());
    ASSERT_TRUE(with_bias && without);
    EXPECT_GE(with_bias->bytes(), out * in * 4);
    for (int64_t rows : {1, 2, 29, 100}) {
      torch::Tensor x = torch::randn({rows, in});
      torch::Tensor y = with_bias->Forward(x);
      ASSERT_EQ(y.sizes(), (std::vector<int64_t>{rows, out}));
      EXPECT_TRUE(torch::allclose(y, torch::linear(x, w, b), 1e-4, 1e-4)) << in << "x" << out << " rows " << rows;
      EXPECT_TRUE(torch::allclose(without->Forward(x), torch::linear(x, w), 1e-4, 1e-4)) << rows;
    }
  }
}

TEST(PackedLinearTest, KeepsLeadingDimensionsAndReadsNonContiguousInputs) {
  REQUIRE_ONEDNN();
  torch::Tensor w = torch::randn({12, 8}), b = torch::randn({12});
  auto p = PackedLinear::Make(w, b);
  ASSERT_TRUE(p);
  torch::Tensor x = torch::randn({3, 5, 8});
  torch::Tensor y = p->Forward(x);
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{3, 5, 12}));
  EXPECT_TRUE(torch::allclose(y, torch::linear(x, w, b), 1e-5, 1e-5));
  torch::Tensor strided = torch::randn({5, 3, 8}).transpose(0, 1);  // [3, 5, 8], not contiguous
  EXPECT_TRUE(torch::allclose(p->Forward(strided), torch::linear(strided, w, b), 1e-5, 1e-5));
  EXPECT_EQ(p->Forward(torch::randn({0, 8})).sizes(), (std::vector<int64_t>{0, 12}));
}

TEST(PackedLinearTest, Bfloat16StaysCloseToFloat32) {
  REQUIRE_ONEDNN();
  torch::Tensor w = torch::randn({64, 128}) * 0.1, b = torch::randn({64});
  auto p = PackedLinear::Make(w.to(torch::kBFloat16), b.to(torch::kBFloat16));
  if (!p) GTEST_SKIP() << "no bfloat16 matmul on this CPU";
  torch::Tensor x = torch::randn({29, 128});
  torch::Tensor y = p->Forward(x.to(torch::kBFloat16));
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::allclose(y.to(torch::kFloat32), torch::linear(x, w, b), 5e-2, 5e-2));
}

// Bfloat16 rows run in chunks of a fixed-shape primitive plus one per remainder: every split
// (a remainder alone, whole chunks, chunks and a remainder, none) gives the rows' own answers,
// also from threads making the same remainder's primitive at once.
TEST(PackedLinearTest, Bfloat16MatchesForRowsAcrossChunks) {
  REQUIRE_ONEDNN();
  torch::manual_seed(5);
  for (auto [in, out] : {std::pair<int64_t, int64_t>{256, 1024}, {1024, 256}, {33, 7}}) {
    torch::Tensor w = (torch::randn({out, in}) * 0.05).to(torch::kBFloat16), b = torch::randn({out}).to(torch::kBFloat16);
    auto p = PackedLinear::Make(w, b);
    if (!p) GTEST_SKIP() << "no bfloat16 matmul on this CPU";
    for (int64_t rows : {0, 1, 255, 256, 257, 512, 600}) {
      torch::Tensor x = torch::randn({rows, in}).to(torch::kBFloat16);
      torch::Tensor y = p->Forward(x);
      ASSERT_EQ(y.sizes(), (std::vector<int64_t>{rows, out}));
      // The reference on the same bf16 values, accumulated in float32.
      torch::Tensor ref = torch::linear(x.to(torch::kFloat32), w.to(torch::kFloat32), b.to(torch::kFloat32));
      EXPECT_TRUE(torch::allclose(y.to(torch::kFloat32), ref, 2e-2, 2e-2)) << in << "x" << out << " rows " << rows;
      // Each row's answer does not depend on the rows beside it.
      if (rows > 1) {
        torch::Tensor last = p->Forward(x.narrow(0, rows - 1, 1));
        EXPECT_TRUE(torch::allclose(last.to(torch::kFloat32), y.narrow(0, rows - 1, 1).to(torch::kFloat32), 1e-2, 1e-2))
            << rows;
      }
    }
    std::vector<std::thread> threads;
    std::vector<torch::Tensor> outs(4);
    torch::Tensor x = torch::randn({3, 300, in}).to(torch::kBFloat16);
    for (size_t t = 0; t < outs.size(); ++t) threads.emplace_back([&, t] { outs[t] = p->Forward(x); });
    for (auto& t : threads) t.join();
    for (const auto& o : outs) EXPECT_TRUE(torch::equal(o, outs[0]));
    EXPECT_EQ(outs[0].sizes(), (std::vector<int64_t>{3, 300, out}));
  }
}

TEST(PackedLinearTest, RefusesWhatItCannotPackAndBadInputs) {
  REQUIRE_ONEDNN();
  EXPECT_FALSE(PackedLinear::Make(torch::randn({4, 4}, torch::kFloat64), torch::Tensor()));
  EXPECT_FALSE(PackedLinear::Make(torch::randn({4}), torch::Tensor()));
  EXPECT_FALSE(PackedLinear::Make(torch::randn({4, 4}), torch::randn({5})));
  auto p = PackedLinear::Make(torch::randn({4, 6}), torch::Tensor());
  ASSERT_TRUE(p);
  EXPECT_THROW(p->Forward(torch::randn({2, 5})), c10::Error);                         // wrong width
  EXPECT_THROW(p->Forward(torch::randn({2, 6}).to(torch::kBFloat16)), c10::Error);    // wrong dtype
}

// softmax(q k^T / sqrt(d) + mask) v in plain libtorch, [B, T, H * d].
torch::Tensor ReferenceAttention(const torch::Tensor& qkv, const torch::Tensor& mask, int64_t heads) {
  const int64_t b = qkv.size(0), t = qkv.size(1), hd = qkv.size(2) / 3, d = hd / heads;
  auto parts = qkv.view({b, t, 3, heads, d}).permute({2, 0, 3, 1, 4});
  auto scores = torch::matmul(parts[0], parts[1].transpose(-1, -2)) / std::sqrt(static_cast<double>(d));
  if (mask.defined()) scores = scores + mask;
  return torch::matmul(torch::softmax(scores, -1), parts[2]).transpose(1, 2).reshape({b, t, hd});
}

TEST(PackedAttentionTest, MatchesPlainAttentionWithAndWithoutPadding) {
  REQUIRE_ONEDNN();
  torch::manual_seed(4);
  for (auto [b, t, heads, d] : {std::array<int64_t, 4>{1, 29, 4, 64}, {3, 7, 2, 8}, {2, 1, 12, 64}}) {
    auto attention = PackedAttention::Make(heads, d, torch::kFloat32);
    ASSERT_TRUE(attention);
    torch::Tensor qkv = torch::randn({b, t, 3 * heads * d});
    torch::Tensor mask;  // the last sequence's last two tokens are padding
    if (b > 1 && t > 2) {
      mask = torch::zeros({b, 1, 1, t});
      mask.index_put_({b - 1, 0, 0, torch::indexing::Slice(t - 2, t)}, -1e9);
    }
    torch::Tensor expected = ReferenceAttention(qkv, mask, heads);
    torch::Tensor all = attention->Forward(qkv, mask, /*first_only=*/false);
    ASSERT_EQ(all.sizes(), expected.sizes());
    EXPECT_TRUE(torch::allclose(all, expected, 1e-4, 1e-5)) << b << "x" << t << " heads " << heads;
    torch::Tensor first = attention->Forward(qkv, mask, /*first_only=*/true);
    ASSERT_EQ(first.sizes(), (std::vector<int64_t>{b, 1, heads * d}));
    EXPECT_TRUE(torch::allclose(first, expected.narrow(1, 0, 1), 1e-4, 1e-5));
  }
}

TEST(PackedAttentionTest, Bfloat16AndBadInputs) {
  REQUIRE_ONEDNN();
  EXPECT_FALSE(PackedAttention::Make(2, 8, torch::kFloat64));
  auto attention = PackedAttention::Make(2, 8, torch::kBFloat16);
  if (!attention) GTEST_SKIP() << "no bfloat16 matmul on this CPU";
  torch::Tensor qkv = torch::randn({2, 5, 48});
  torch::Tensor out = attention->Forward(qkv.to(torch::kBFloat16), torch::Tensor(), false);
  EXPECT_EQ(out.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::allclose(out.to(torch::kFloat32), ReferenceAttention(qkv, torch::Tensor(), 2), 5e-2, 5e-2));
  EXPECT_THROW(attention->Forward(qkv, torch::Tensor(), false), c10::Error);  // float32 into a bf16 kernel
  EXPECT_THROW(attention->Forward(torch::randn({2, 5, 47}).to(torch::kBFloat16), torch::Tensor(), false), c10::Error);
}

TEST(PackedLinearTest, PreparingAModelForInferencePacksEveryLayer) {
  REQUIRE_ONEDNN();
  auto c = ParseConfig({{"model_type", "bert"}, {"vocab_size", 50}, {"hidden_size", 16}, {"num_hidden_layers", 2},
                        {"num_attention_heads", 2}, {"intermediate_size", 24}});
  ASSERT_TRUE(c.has_value());
  TransformerModel m(*c, Objective::kNoObjective, false);
  InitWeights(*m, 1);
  for (auto& layer : m->encoder->layers) EXPECT_FALSE(layer->packed());
  m->PrepareForInference();
  for (auto& layer : m->encoder->layers) EXPECT_TRUE(layer->packed());
  m->encoder->FuseQkv(false);  // what training does before it changes the weights
  for (auto& layer : m->encoder->layers) EXPECT_FALSE(layer->packed());
}

TEST(PackedLinearTest, AServedModelHoldsItsProjectionsOnceAndOnlyRunsInference) {
  REQUIRE_ONEDNN();
  auto c = ParseConfig({{"model_type", "bert"}, {"vocab_size", 50}, {"hidden_size", 16}, {"num_hidden_layers", 2},
                        {"num_attention_heads", 2}, {"intermediate_size", 24}, {"id2label", {{"0", "a"}, {"1", "b"}}}});
  ASSERT_TRUE(c.has_value());
  TransformerModel kept(*c, Objective::kTextClassification, false), served(*c, Objective::kTextClassification, false);
  InitWeights(*kept, 5);
  InitWeights(*served, 5);
  auto bytes = [](TransformerModel& m) {
    int64_t n = 0;
    for (const auto& p : m->parameters()) n += p.numel() * p.element_size();
    return n;
  };
  const int64_t before = bytes(served);
  kept->PrepareForInference();
  served->PrepareForInference(/*drop_sources=*/true);
  // Each layer's projections: (16x16 x 4 + 16x24 x 2) weights + biases, float32.
  const int64_t projections = 2 * ((16 * 16 * 4 + 16 * 24 * 2) + (16 * 4 + 24 + 16)) * 4;
  EXPECT_EQ(bytes(served), before - projections);
  EXPECT_EQ(bytes(kept), before);
  EXPECT_GE(served->PackedBytes(), projections);

  EncoderInput in;
  in.input_ids = torch::tensor({{2, 11, 12, 3}, {2, 21, 3, 0}}, torch::kInt64);
  in.attention_mask = torch::tensor({{1, 1, 1, 1}, {1, 1, 1, 0}}, torch::kInt64);
  {
    torch::InferenceMode guard;
    EXPECT_TRUE(torch::equal(kept->forward(in).logits, served->forward(in).logits));
  }
  EXPECT_THROW(served->encoder->FuseQkv(true), c10::Error);
  EXPECT_FALSE(kept->inference_only());
  ASSERT_TRUE(served->inference_only());
  Status saved = SaveModelDir(*served, ::testing::TempDir() + "/mlaas_served_model");
  EXPECT_EQ(saved.code(), StatusCode::kFailedPrecondition) << saved.ToString();
  served->train();
  EXPECT_THROW(served->forward(in), c10::Error);  // training needs the dropped weights: a clear error
}

TEST(TokenLayoutTest, FindsTheRealTokensOfRightPaddedRowsOnly) {
  auto layout = TokenLayout::Of(torch::tensor({{1, 1, 1, 0}, {1, 0, 0, 0}, {1, 1, 1, 1}}, torch::kInt64));
  ASSERT_TRUE(layout.has_value());
  EXPECT_EQ(layout->batch, 3);
  EXPECT_EQ(layout->length, 4);
  EXPECT_TRUE(torch::equal(layout->index, torch::tensor({0, 1, 2, 4, 8, 9, 10, 11}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(layout->first, torch::tensor({0, 3, 4}, torch::kInt64)));
  EXPECT_FALSE(TokenLayout::Of(torch::tensor({{0, 1, 1}, {1, 1, 1}}, torch::kInt64)).has_value());  // left padding
  EXPECT_FALSE(TokenLayout::Of(torch::tensor({{1, 0, 1}}, torch::kInt64)).has_value());             // a hole
  EXPECT_FALSE(TokenLayout::Of(torch::tensor({{1, 1}, {0, 0}}, torch::kInt64)).has_value());        // an empty row
}

// A batch of mixed lengths on packed layers (the padding skipped) gives what each text gives
// alone, and what the unpacked layers give on the padded batch, at every real token.
TEST(PackedLinearTest, APaddedBatchSkipsItsPaddingAndMatchesEachTextAlone) {
  REQUIRE_ONEDNN();
  auto c = ParseConfig({{"model_type", "bert"}, {"vocab_size", 60}, {"hidden_size", 32}, {"num_hidden_layers", 3},
                        {"num_attention_heads", 4}, {"intermediate_size", 48}, {"id2label", {{"0", "a"}, {"1", "b"}, {"2", "c"}}}});
  ASSERT_TRUE(c.has_value());
  TransformerModel m(*c, Objective::kTextClassification, false);
  InitWeights(*m, 7);
  m->eval();
  const std::vector<std::vector<int64_t>> texts = {{2, 11, 12, 13, 14, 15, 3}, {2, 21, 3}, {2, 31, 32, 33, 3}, {2, 3}};
  EncoderInput batch;
  batch.input_ids = torch::zeros({4, 7}, torch::kInt64);
  batch.attention_mask = torch::zeros({4, 7}, torch::kInt64);
  for (size_t r = 0; r < texts.size(); ++r) {
    const auto n = static_cast<int64_t>(texts[r].size());
    batch.input_ids[r].narrow(0, 0, n).copy_(torch::tensor(texts[r], torch::kInt64));
    batch.attention_mask[r].narrow(0, 0, n).fill_(1);
  }
  torch::InferenceMode guard;
  auto unpacked = m->encoder->forward(batch).last_hidden_state;
  m->PrepareForInference();
  auto packed = m->encoder->forward(batch).last_hidden_state;
  EncoderInput first = batch;
  first.first_token_only = true;
  auto logits = m->forward(first).logits;
  for (size_t r = 0; r < texts.size(); ++r) {
    const auto n = static_cast<int64_t>(texts[r].size());
    EncoderInput alone;
    alone.input_ids = torch::tensor(texts[r], torch::kInt64).unsqueeze(0);
    alone.attention_mask = torch::ones_like(alone.input_ids);
    auto own = m->encoder->forward(alone).last_hidden_state[0];
    EXPECT_TRUE(torch::allclose(packed[r].narrow(0, 0, n), own, 1e-4, 1e-4)) << "text " << r;
    EXPECT_TRUE(torch::allclose(packed[r].narrow(0, 0, n), unpacked[r].narrow(0, 0, n), 1e-4, 1e-4)) << "text " << r;
    EXPECT_EQ(packed[r].narrow(0, n, 7 - n).abs().sum().item<float>(), 0.0f) << "padding is zeros";
    alone.first_token_only = true;
    EXPECT_TRUE(torch::allclose(logits[r], m->forward(alone).logits[0], 1e-4, 1e-4)) << "text " << r;
  }
}

// Masks that are not right-padded keep the padded path on packed layers, with the same results
// as the unpacked layers at the real tokens; a mask of another shape than the ids is refused.
TEST(PackedLinearTest, OtherMasksKeepThePaddedPath) {
  REQUIRE_ONEDNN();
  auto c = ParseConfig({{"model_type", "bert"}, {"vocab_size", 60}, {"hidden_size", 32}, {"num_hidden_layers", 2},
                        {"num_attention_heads", 4}, {"intermediate_size", 48}});
  ASSERT_TRUE(c.has_value());
  TransformerModel m(*c, Objective::kNoObjective, false);
  InitWeights(*m, 9);
  m->eval();
  EncoderInput in;
  in.input_ids = torch::tensor({{0, 0, 2, 11, 12, 3}, {2, 21, 0, 22, 23, 3}}, torch::kInt64);
  in.attention_mask = torch::tensor({{0, 0, 1, 1, 1, 1}, {1, 1, 0, 1, 1, 1}}, torch::kInt64);  // left padding, a hole
  ASSERT_FALSE(TokenLayout::Of(in.attention_mask).has_value());
  torch::InferenceMode guard;
  auto unpacked = m->encoder->forward(in).last_hidden_state;
  m->PrepareForInference();
  auto packed = m->encoder->forward(in).last_hidden_state;
  auto keep = in.attention_mask.ne(0);
  EXPECT_TRUE(torch::allclose(packed.index({keep}), unpacked.index({keep}), 1e-4, 1e-4));
  EncoderInput bad = in;
  bad.attention_mask = in.attention_mask.narrow(1, 0, 4);
  EXPECT_THROW(m->encoder->forward(bad), c10::Error);
}

}  // namespace
}  // namespace mlaas::nn
