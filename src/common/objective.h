// The objectives of the platform (a request's model.objective): one enum shared by request
// validation, training, prediction and serving, with its names, what input each takes, and
// which the engine trains and serves today. No libtorch here.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace mlaas {

enum class Objective {
  kTextClassification,
  kMaskedLm,
  kCausalLm,
  kNextSentencePrediction,
  kNoObjective,         // embeddings (what a sentence-embedding model predicts)
  kSentenceEmbedding,   // training embeddings with in-batch negatives
  kTokenClassification,
  kQuestionAnswering,
  kImageClassification,
};

// What a model of the objective takes as rows.
enum class Modality { kText, kImage };

std::string_view ObjectiveName(Objective o);  // "text-classification", ...
// Every objective, in the order above.
const std::vector<Objective>& AllObjectives();
std::vector<std::string> ObjectiveNames(std::initializer_list<Objective> objectives);
std::vector<std::string> ObjectiveNames(const std::vector<Objective>& objectives);

// Any objective's name ("fill-mask" is masked-lm); InvalidArgument naming `field` otherwise
// (required when empty), listing the names.
Result<Objective> ParseObjective(std::string_view name, const std::string& field = "model.objective");

Modality ModalityOf(Objective o);

// The objective a model trained for `o` is served with: a sentence-embedding model predicts
// embeddings (no-objective); others their own.
Objective ServedAs(Objective o);

enum class Use { kTrain, kPredict };
// The objectives the engine implements for `use`: training text-classification, masked-lm,
// causal-lm, token-classification, next-sentence-prediction, question-answering,
// sentence-embedding and image-classification; prediction the same (causal-lm: generation;
// token-classification: entities; next-sentence-prediction: is_next of text pairs;
// question-answering: spans of contexts) and no-objective
// (sentence-embedding models are served as no-objective).
bool Implemented(Objective o, Use use);
std::vector<Objective> ImplementedObjectives(Use use, Modality modality);
// OK when implemented; Unimplemented naming `field` otherwise, listing what is.
Status CheckImplemented(Objective o, Use use, const std::string& field = "model.objective");

}  // namespace mlaas
