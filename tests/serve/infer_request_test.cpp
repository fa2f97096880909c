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
