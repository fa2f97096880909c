#include "common/objective.h"

namespace mlaas {

std::string_view ObjectiveName(Objective o) {
  switch (o) {
    case Objective::kTextClassification: return "text-classification";
    case Objective::kMaskedLm: return "masked-lm";
    case Objective::kCausalLm: return "causal-lm";
    case Objective::kNextSentencePrediction: return "next-sentence-prediction";
    case Objective::kNoObjective: return "no-objective";
    case Objective::kSentenceEmbedding: return "sentence-embedding";
    case Objective::kTokenClassification: return "token-classification";
    case Objective::kQuestionAnswering: return "question-answering";
    case Objective::kImageClassification: return "image-classification";
  }
  return "?";
}

const std::vector<Objective>& AllObjectives() {
  static const std::vector<Objective> kAll = {
      Objective::kTextClassification, Objective::kMaskedLm,           Objective::kCausalLm,
      Objective::kNextSentencePrediction, Objective::kNoObjective,    Objective::kSentenceEmbedding,
      Objective::kTokenClassification, Objective::kQuestionAnswering, Objective::kImageClassification};
  return kAll;
}

std::vector<std::string> ObjectiveNames(const std::vector<Objective>& objectives) {
  std::vector<std::string> out;
  out.reserve(objectives.size());
  for (Objective o : objectives) out.emplace_back(ObjectiveName(o));
  return out;
}

std::vector<std::string> ObjectiveNames(std::initializer_list<Objective> objectives) {
  return ObjectiveNames(std::vector<Objective>(objectives));
}

namespace {

std::string Listed(const std::vector<Objective>& objectives) {
  std::string out;
  for (Objective o : objectives) out += (out.empty() ? "" : ", ") + std::string(ObjectiveName(o));
  return out;
}

}  // namespace

Result<Objective> ParseObjective(std::string_view name, const std::string& field) {
  if (name.empty()) return InvalidArgument(field + " is required (" + Listed(AllObjectives()) + ")", field);
  if (name == "fill-mask") return Objective::kMaskedLm;
  for (Objective o : AllObjectives())
    if (ObjectiveName(o) == name) return o;
  return InvalidArgument("unknown objective '" + std::string(name) + "' (" + Listed(AllObjectives()) + ")", field);
}

Modality ModalityOf(Objective o) { return o == Objective::kImageClassification ? Modality::kImage : Modality::kText; }

Objective ServedAs(Objective o) { return o == Objective::kSentenceEmbedding ? Objective::kNoObjective : o; }

bool Implemented(Objective o, Use use) {
  switch (o) {
    case Objective::kTextClassification:
    case Objective::kMaskedLm:
    case Objective::kCausalLm:
    case Objective::kSentenceEmbedding:
    case Objective::kImageClassification:
    case Objective::kTokenClassification:
    case Objective::kNextSentencePrediction:
    case Objective::kQuestionAnswering:
      return true;
    case Objective::kNoObjective: return use == Use::kPredict;
    default: return false;
  }
}

std::vector<Objective> ImplementedObjectives(Use use, Modality modality) {
  std::vector<Objective> out;
  for (Objective o : AllObjectives())
    if (Implemented(o, use) && ModalityOf(o) == modality) out.push_back(o);
  return out;
}

Status CheckImplemented(Objective o, Use use, const std::string& field) {
  if (Implemented(o, use)) return Status::Ok();
  std::vector<Objective> available;
  for (Objective a : AllObjectives())
    if (Implemented(a, use)) available.push_back(a);
  return Unimplemented(std::string(use == Use::kTrain ? "training" : "prediction") + " for objective '" +
                           std::string(ObjectiveName(o)) + "' is not available yet (" + Listed(available) + " are)",
                       field);
}

}  // namespace mlaas
