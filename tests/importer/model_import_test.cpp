// Which files of a pretrained model directory an import keeps, converts or leaves out.
#include "importer/model_import.h"

#include <gtest/gtest.h>

namespace mlaas::importer {
namespace {

TEST(ModelImportTest, KeepsWhatMlaasReadsConvertsPytorchAndLeavesOtherFrameworksOut) {
  for (const char* kept : {"config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "merges.txt", "vocab.json",
                           "special_tokens_map.json", "README.md", "model.safetensors", "model.safetensors.index.json",
                           "model-00001-of-00002.safetensors", "modules.json", "1_Pooling/config.json",
                           "sentence_bert_config.json", "LICENSE", "sentencepiece.bpe.model"})
    EXPECT_EQ(ActionFor(kept, false), FileAction::kCopy) << kept;
  for (const char* skipped : {".gitattributes", "tf_model.h5", "flax_model.msgpack", "rust_model.ot", "onnx/model.onnx",
                              "model.onnx", "openvino/openvino_model.xml", "coreml/model.mlmodel", "model.tflite",
                              "2_Dense/.hidden", "pytorch_model.bin.index.json", "training_args.pt", "model.gguf",
                              ".git/config", "sub/.cache/x.json"})
    EXPECT_EQ(ActionFor(skipped, false), FileAction::kSkip) << skipped;
  EXPECT_EQ(ActionFor("pytorch_model.bin", false), FileAction::kConvert);
  EXPECT_EQ(ActionFor("pytorch_model-00001-of-00003.bin", false), FileAction::kConvert);
  EXPECT_EQ(ActionFor("2_Dense/pytorch_model.bin", false), FileAction::kConvert);
  // Safetensors weights already there: the PyTorch copy is redundant.
  EXPECT_EQ(ActionFor("pytorch_model.bin", true), FileAction::kSkip);
}

TEST(ModelImportTest, PytorchWeightsBecomeOneSafetensorsFilePerDirectory) {
  EXPECT_EQ(SafetensorsNameFor("pytorch_model.bin"), "model.safetensors");
  EXPECT_EQ(SafetensorsNameFor("pytorch_model-00002-of-00003.bin"), "model.safetensors");
  EXPECT_EQ(SafetensorsNameFor("2_Dense/pytorch_model.bin"), "2_Dense/model.safetensors");
}

}  // namespace
}  // namespace mlaas::importer
