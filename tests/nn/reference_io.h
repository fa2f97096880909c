// The reference check's inputs and outputs file (io.safetensors), shared by the tools that
// write model directories for tests/nn/reference/hf_reference.py to check.
#pragma once

#include <filesystem>
#include <vector>

#include "checkpoint/safetensors.h"
#include "nn/generate.h"
#include "nn/model.h"

namespace mlaas::nn {

inline torch::Tensor Ids(const std::vector<std::vector<int64_t>>& rows) {
  auto out = torch::empty({static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())}, torch::kInt64);
  for (size_t r = 0; r < rows.size(); ++r)
    for (size_t c = 0; c < rows[r].size(); ++c) out[r][c] = rows[r][c];
  return out;
}

// The same batch as the reference's inputs(): three sequences, two padded; BERT's third has a
// second segment; Longformer's rows have 2, 0 and 1 tokens with global attention (unless
// `global` is false: a sequence classifier's own, the first token's).
inline EncoderInput Inputs(Architecture arch, int64_t pad, bool global = true) {
  EncoderInput in;
  in.input_ids = Ids({{2, 11, 12, 13, 14, 15, 16, 3}, {2, 21, 22, 23, 3, pad, pad, pad}, {2, 31, 3, 41, 42, 3, pad, pad}});
  in.attention_mask = in.input_ids.ne(pad).to(torch::kInt64);
  if (arch == Architecture::kBert)
    in.token_type_ids = Ids({{0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 1, 1, 1, 0, 0}});
  if (arch == Architecture::kLongformer && global)
    in.global_attention_mask = Ids({{1, 0, 0, 0, 0, 1, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 1, 0, 0, 0, 0}});
  return in;
}

inline void Add(std::vector<checkpoint::TensorToWrite>& out, std::vector<torch::Tensor>& keep, const std::string& name,
         torch::Tensor t) {
  keep.push_back(t.contiguous());
  const auto& k = keep.back();
  out.push_back({name, k.scalar_type() == torch::kInt64 ? checkpoint::DType::kI64 : checkpoint::DType::kF32,
                 std::vector<int64_t>(k.sizes().begin(), k.sizes().end()),
                 {static_cast<const std::byte*>(k.data_ptr()), static_cast<size_t>(k.nbytes())}});
}

// Runs the reference batch through `model` (inference) and writes the inputs and the outputs
// to dir/io.safetensors.
inline Status WriteIo(TransformerModelImpl& model, Architecture arch, const std::filesystem::path& dir) {
  EncoderInput in = Inputs(arch, model.config().pad_token_id, model.objective() != Objective::kTextClassification);
  ModelOutput out;
  {
    torch::InferenceMode guard;
    model.eval();
    model.PrepareForInference();
    out = model.forward(in);
  }
  std::vector<checkpoint::TensorToWrite> io;
  std::vector<torch::Tensor> keep;
  keep.reserve(12);  // Add keeps pointers into it
  Add(io, keep, "input_ids", in.input_ids);
  Add(io, keep, "attention_mask", in.attention_mask);
  if (in.token_type_ids.defined()) Add(io, keep, "token_type_ids", in.token_type_ids);
  if (in.global_attention_mask.defined()) Add(io, keep, "global_attention_mask", in.global_attention_mask);
  Add(io, keep, "last_hidden_state", out.encoder.last_hidden_state);
  if (out.logits.defined()) Add(io, keep, "logits", out.logits);
  if (model.is_decoder()) {  // greedy continuations of prompts of different lengths, batched
    const std::vector<std::vector<int64_t>> prompts = {{5, 17, 33, 8}, {61}, {2, 3, 4, 5, 6, 7}};
    GenerationOptions greedy;
    greedy.max_new_tokens = 6;
    auto generated = Generate(model, prompts, greedy);
    std::vector<std::vector<int64_t>> padded;
    std::vector<int64_t> lengths;
    for (auto p : prompts) {
      lengths.push_back(static_cast<int64_t>(p.size()));
      p.resize(6, 0);
      padded.push_back(p);
    }
    Add(io, keep, "prompt_ids", Ids(padded));
    Add(io, keep, "prompt_lengths", torch::tensor(lengths, torch::kInt64));
    Add(io, keep, "generated", Ids(generated));
  }
  return checkpoint::WriteSafetensors(dir / "io.safetensors", io);
}

}  // namespace mlaas::nn
