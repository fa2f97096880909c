#include "serve/infer_request.h"

#include <gtest/gtest.h>

namespace mlaas::serve {
namespace {

using nlohmann::json;

Result<InferRequest> Parse(const std::string& text) { return ParseInferRequestV2(json::parse(text)); }

json Ids(json shape, json data) {
  return {{"inputs", json::array({{{"name", "input_ids"}, {"datatype", "INT64"}, {"shape", shape}, {"data", data}}})}};
}

TEST(InferRequestV2, TextsFlatOrNested) {
  auto r = Parse(R"({"inputs":[{"name":"text","datatype":"BYTES","shape":[2,1],"data":[["a"],["b"]]}],
                    "outputs":[{"name":"label"}],"parameters":{"top_k":2}})");
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->texts, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r->outputs, std::vector<std::string>{"label"});
  EXPECT_EQ(r->options.top_k, 2);
  EXPECT_EQ(r->field, "inputs[0].data");
}

TEST(InferRequestV2, TokenIdsWithMask) {
  json body = Ids({2, 3}, {1, 2, 3, 4, 5, 6});
  body["inputs"].push_back({{"name", "attention_mask"}, {"datatype", "INT64"}, {"shape", {2, 3}}, {"data", {1, 1, 1, 1, 1, 0}}});
  auto r = ParseInferRequestV2(body);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->token_ids, (std::vector<std::vector<int64_t>>{{1, 2, 3}, {4, 5}}));
}

// Shapes whose product wraps around (4 x 2^62 = 2^64 = 0 in 64 bits), or that pair a zero
// with a huge dimension, once made the parser read out of bounds or loop 2^31 times.
TEST(InferRequestV2, OverflowingShapesAreRefused) {
  for (json shape : {json{4, 4611686018427387904LL}, json{2147483648LL, 0}, json{0, 2147483648LL},
                     json{4611686018427387904LL, 4}, json{3037000500LL, 3037000500LL}, json{65537, 1},
                     json{1, 65537}, json{9223372036854775807LL, 9223372036854775807LL},
                     json{18446744073709551615ULL, 1}, json{1, 1, 1, 1, 1, 1, 1, 1, 1}}) {
    auto r = ParseInferRequestV2(Ids(shape, json::array()));
    ASSERT_FALSE(r.has_value()) << shape.dump();
    EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument) << shape.dump();
    EXPECT_EQ(r.error().field(), "inputs[0].shape") << shape.dump();
  }
  json text = {{"inputs", json::array({{{"name", "t"}, {"datatype", "BYTES"}, {"shape", {1LL << 40, 1LL << 40}}, {"data", json::array()}}})}};
  EXPECT_FALSE(ParseInferRequestV2(text).has_value());
  text["inputs"][0]["shape"] = {70000};
  auto r = ParseInferRequestV2(text);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("70000 texts"), std::string::npos);
}

TEST(InferRequestV2, EveryMalformedPartNamesItsField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"([])", ""},
      {R"({})", "inputs"},
      {R"({"inputs":{}})", "inputs"},
      {R"({"inputs":[]})", "inputs"},
      {R"({"inputs":[3]})", "inputs[0]"},
      {R"({"inputs":[{"name":1,"datatype":"BYTES","shape":[1],"data":["a"]}]})", "inputs[0].name"},
      {R"({"inputs":[{"name":"t","datatype":"FP64","shape":[1],"data":[1.0]}]})", "inputs[0].datatype"},
      {R"({"inputs":[{"name":"t","datatype":"FP32","shape":[1],"data":[1.0]}]})", "inputs[0].shape"},
      {R"({"inputs":[{"name":"t","datatype":"FP32","shape":[1,2,2,2],"data":[0,0,0,0,0,0,0,0]}]})", "inputs[0].shape"},
      {R"({"inputs":[{"name":"t","datatype":"FP32","shape":[1,1,1,2],"data":[0.5,1.5]}]})", "inputs[0].data"},
      {R"({"inputs":[{"name":"t","datatype":"UINT8","shape":[1,1,1,2],"data":[0,256]}]})", "inputs[0].data"},
      {R"({"inputs":[{"name":"t","datatype":"UINT8","shape":[1,1,1,2],"data":[0,1.5]}]})", "inputs[0].data"},
      {R"({"inputs":[{"name":"t","datatype":"UINT8","shape":[1,1,1,2],"data":[0]}]})", "inputs[0].data"},
      {R"({"inputs":[{"name":"t","datatype":"UINT8","shape":[1,1,1,1],"data":[0]},
                     {"name":"u","datatype":"BYTES","shape":[1],"data":["a"]}]})", "inputs"},
      {R"({"inputs":[{"name":"t","datatype":"BYTES","shape":"1","data":["a"]}]})", "inputs[0].shape"},
      {R"({"inputs":[{"name":"t","datatype":"BYTES","shape":[-1],"data":["a"]}]})", "inputs[0].shape"},
      {R"({"inputs":[{"name":"t","datatype":"BYTES","shape":[1.5],"data":["a"]}]})", "inputs[0].shape"},
      {R"({"inputs":[{"name":"t","datatype":"BYTES","shape":[2],"data":["a"]}]})", "inputs[0].data"},
      {R"({"inputs":[{"name":"t","datatype":"BYTES","shape":[1],"data":"a"}]})", "inputs[0].data"},
      {R"({"inputs":[{"name":"t","datatype":"BYTES","shape":[1],"data":[1]}]})", "inputs[0].data"},
      {R"({"inputs":[{"name":"t","datatype":"BYTES","shape":[1]}]})", "inputs[0].data"},
      {R"({"inputs":[{"name":"input_ids","datatype":"INT64","shape":[2],"data":[1,2]}]})", "inputs[0].shape"},
      {R"({"inputs":[{"name":"input_ids","datatype":"INT64","shape":[1,2],"data":[1,"x"]}]})", "inputs[0].data"},
      {R"({"inputs":[{"name":"input_ids","datatype":"INT64","shape":[1,1],"data":[1]},
                     {"name":"attention_mask","datatype":"INT64","shape":[1,2],"data":[1,1]}]})", "inputs[1].shape"},
      {R"({"inputs":[{"name":"input_ids","datatype":"INT64","shape":[1,1],"data":[1]},
                     {"name":"attention_mask","datatype":"INT64","shape":[1,1],"data":[null]}]})", "inputs[1].data"},
      {R"({"inputs":[{"name":"input_ids","datatype":"INT64","shape":[1,1],"data":[1]},
                     {"name":"attention_mask","datatype":"INT64","shape":[1,1]}]})", "inputs[1].data"},
      {R"({"inputs":[{"name":"attention_mask","datatype":"INT64","shape":[1,1],"data":[1]}]})", "inputs"},
      {R"({"inputs":[{"name":"x","datatype":"INT64","shape":[1,1],"data":[1]}]})", "inputs[0].name"},
      {R"({"inputs":[{"name":"t","datatype":"BYTES","shape":[1],"data":["a"]}],"outputs":[{}]})", "outputs[0].name"},
      {R"({"inputs":[{"name":"t","datatype":"BYTES","shape":[1],"data":["a"]}],"outputs":3})", "outputs"},
      {R"({"inputs":[{"name":"t","datatype":"BYTES","shape":[1],"data":["a"]}],"parameters":[]})", "parameters"},
  };
  for (const auto& [text, field] : cases) {
    auto r = Parse(text);
    ASSERT_FALSE(r.has_value()) << text;
    EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_EQ(r.error().field(), field) << text << ": " << r.error().ToString();
  }
}

// Two BYTES inputs: a text with its pair (pair_text or text_pair), or a question with its context,
// in either order; the second names its own field in errors.
TEST(InferRequestV2, PairsAndQuestionsWithTheirContexts) {
  auto pairs = Parse(R"({"inputs":[{"name":"text","datatype":"BYTES","shape":[2],"data":["a","b"]},
                                   {"name":"pair_text","datatype":"BYTES","shape":[2],"data":["c","d"]}]})");
  ASSERT_TRUE(pairs.has_value()) << pairs.error().ToString();
  EXPECT_EQ(pairs->texts, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(pairs->pairs, (std::vector<std::string>{"c", "d"}));
  EXPECT_TRUE(pairs->contexts.empty());
  EXPECT_EQ(pairs->second_field, "inputs[1].data");
  auto qa = Parse(R"({"inputs":[{"name":"context","datatype":"BYTES","shape":[1,1],"data":[["the cät sat"]]},
                                {"name":"question","datatype":"BYTES","shape":[1],"data":["who sat?"]}]})");
  ASSERT_TRUE(qa.has_value()) << qa.error().ToString();
  EXPECT_EQ(qa->texts, std::vector<std::string>{"who sat?"});
  EXPECT_EQ(qa->contexts, std::vector<std::string>{"the cät sat"});
  EXPECT_TRUE(qa->pairs.empty());
  EXPECT_EQ(qa->field, "inputs[1].data");
  EXPECT_EQ(qa->second_field, "inputs[0].data");
  auto reversed = Parse(R"({"inputs":[{"name":"text_pair","datatype":"BYTES","shape":[1],"data":["b"]},
                                      {"name":"sentence","datatype":"BYTES","shape":[1],"data":["a"]}]})");
  ASSERT_TRUE(reversed.has_value()) << reversed.error().ToString();
  EXPECT_EQ(reversed->texts, std::vector<std::string>{"a"});
  EXPECT_EQ(reversed->pairs, std::vector<std::string>{"b"});
  // One BYTES input named question is a text like any other (the deployment says what it needs).
  auto alone = Parse(R"({"inputs":[{"name":"question","datatype":"BYTES","shape":[1],"data":["q"]}]})");
  ASSERT_TRUE(alone.has_value());
  EXPECT_TRUE(alone->contexts.empty());
  // Token ids with their segments; masked positions dropped from both.
  json body = Ids({1, 4}, {2, 7, 3, 0});
  body["inputs"].push_back({{"name", "token_type_ids"}, {"datatype", "INT64"}, {"shape", {1, 4}}, {"data", {0, 0, 1, 0}}});
  body["inputs"].push_back({{"name", "attention_mask"}, {"datatype", "INT64"}, {"shape", {1, 4}}, {"data", {1, 1, 1, 0}}});
  auto ids = ParseInferRequestV2(body);
  ASSERT_TRUE(ids.has_value()) << ids.error().ToString();
  EXPECT_EQ(ids->token_ids, (std::vector<std::vector<int64_t>>{{2, 7, 3}}));
  EXPECT_EQ(ids->token_type_ids, (std::vector<std::vector<int64_t>>{{0, 0, 1}}));
}

TEST(InferRequestV2, MismatchedPairsAndQuestionsNameTheField) {
  const std::pair<const char*, const char*> cases[] = {
      // as many second texts as first ones
      {R"({"inputs":[{"name":"text","datatype":"BYTES","shape":[2],"data":["a","b"]},
                     {"name":"pair_text","datatype":"BYTES","shape":[1],"data":["c"]}]})", "inputs[1].shape"},
      // a context needs a question, a pair needs its texts
      {R"({"inputs":[{"name":"context","datatype":"BYTES","shape":[1],"data":["c"]}]})", "inputs[0].name"},
      {R"({"inputs":[{"name":"pair_text","datatype":"BYTES","shape":[1],"data":["c"]}]})", "inputs[0].name"},
      // a question goes with a context, a text with a pair_text
      {R"({"inputs":[{"name":"question","datatype":"BYTES","shape":[1],"data":["q"]},
                     {"name":"pair_text","datatype":"BYTES","shape":[1],"data":["c"]}]})", "inputs[1].name"},
      {R"({"inputs":[{"name":"text","datatype":"BYTES","shape":[1],"data":["q"]},
                     {"name":"context","datatype":"BYTES","shape":[1],"data":["c"]}]})", "inputs[1].name"},
      {R"({"inputs":[{"name":"text","datatype":"BYTES","shape":[1],"data":["q"]},
                     {"name":"other","datatype":"BYTES","shape":[1],"data":["c"]}]})", "inputs[1].name"},
      {R"({"inputs":[{"name":"pair_text","datatype":"BYTES","shape":[1],"data":["q"]},
                     {"name":"text_pair","datatype":"BYTES","shape":[1],"data":["c"]}]})", "inputs[0].name"},
      {R"({"inputs":[{"name":"question","datatype":"BYTES","shape":[1],"data":["q"]},
                     {"name":"context","datatype":"BYTES","shape":[1],"data":["c"]},
                     {"name":"x","datatype":"BYTES","shape":[1],"data":["c"]}]})", "inputs[2]"},
      {R"({"inputs":[{"name":"question","datatype":"BYTES","shape":[1],"data":["q"]},
                     {"name":"context","datatype":"BYTES","shape":[1],"data":[3]}]})", "inputs[1].data"},
      // segments go with token ids, as 0 or 1, in their shape
      {R"({"inputs":[{"name":"text","datatype":"BYTES","shape":[1],"data":["q"]},
                     {"name":"token_type_ids","datatype":"INT64","shape":[1,1],"data":[0]}]})", "inputs[1]"},
      {R"({"inputs":[{"name":"input_ids","datatype":"INT64","shape":[1,2],"data":[2,3]},
                     {"name":"token_type_ids","datatype":"INT64","shape":[1,2],"data":[0,2]}]})", "inputs[1].data"},
      {R"({"inputs":[{"name":"input_ids","datatype":"INT64","shape":[1,2],"data":[2,3]},
                     {"name":"token_type_ids","datatype":"INT64","shape":[2,1],"data":[0,1]}]})", "inputs[1].shape"},
  };
  for (const auto& [text, field] : cases) {
    auto r = Parse(text);
    ASSERT_FALSE(r.has_value()) << text;
    EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_EQ(r.error().field(), field) << text << ": " << r.error().ToString();
  }
}

// Images as a tensor [N, C, H, W]: UINT8 scaled to 0..1, FP32 taken as it is, nested or flat.
TEST(InferRequestV2, ImageTensorsBecomePixelsInZeroToOne) {
  auto r = Parse(R"({"inputs":[{"name":"pixel_values","datatype":"UINT8","shape":[2,1,1,2],"data":[[[[0,255]]],[[[51,102]]]]}]})");
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->images, 2);
  EXPECT_EQ(r->channels, 1);
  EXPECT_EQ(r->height, 1);
  EXPECT_EQ(r->width, 2);
  ASSERT_EQ(r->pixels.size(), 4u);
  EXPECT_FLOAT_EQ(r->pixels[1], 1.0f);
  EXPECT_FLOAT_EQ(r->pixels[2], 0.2f);
  auto f = Parse(R"({"inputs":[{"name":"image","datatype":"FP32","shape":[1,3,1,1],"data":[0.25,0.5,1]}]})");
  ASSERT_TRUE(f.has_value()) << f.error().ToString();
  EXPECT_EQ(f->pixels, (std::vector<float>{0.25f, 0.5f, 1.0f}));
  EXPECT_TRUE(f->texts.empty());
  EXPECT_TRUE(f->token_ids.empty());
}

}  // namespace
}  // namespace mlaas::serve
