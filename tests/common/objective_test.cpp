#include "common/objective.h"

#include <gtest/gtest.h>

namespace mlaas {
namespace {

TEST(ObjectiveTest, EveryObjectiveParsesFromItsOwnNameAndFillMaskIsMaskedLm) {
  for (Objective o : AllObjectives()) {
    auto parsed = ParseObjective(ObjectiveName(o));
    ASSERT_TRUE(parsed.has_value()) << ObjectiveName(o);
    EXPECT_EQ(*parsed, o);
  }
  EXPECT_EQ(*ParseObjective("fill-mask"), Objective::kMaskedLm);
  EXPECT_EQ(AllObjectives().size(), 9u);
}

TEST(ObjectiveTest, UnknownAndMissingNamesAreErrorsNamingTheField) {
  auto bad = ParseObjective("image-segmentation", "model.objective");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.error().field(), "model.objective");
  EXPECT_NE(bad.error().message().find("image-classification"), std::string::npos);  // lists the names
  auto empty = ParseObjective("", "x.objective");
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.error().field(), "x.objective");
  EXPECT_NE(empty.error().message().find("required"), std::string::npos);
}

TEST(ObjectiveTest, ModalityAndServedObjective) {
  EXPECT_EQ(ModalityOf(Objective::kImageClassification), Modality::kImage);
  EXPECT_EQ(ModalityOf(Objective::kTextClassification), Modality::kText);
  EXPECT_EQ(ServedAs(Objective::kSentenceEmbedding), Objective::kNoObjective);
  EXPECT_EQ(ServedAs(Objective::kMaskedLm), Objective::kMaskedLm);
  EXPECT_EQ(ObjectiveNames({Objective::kNoObjective, Objective::kMaskedLm}),
            (std::vector<std::string>{"no-objective", "masked-lm"}));
}

TEST(ObjectiveTest, NotImplementedObjectivesAreUnimplementedNamingWhatIs) {
  EXPECT_TRUE(CheckImplemented(Objective::kTextClassification, Use::kTrain).ok());
  EXPECT_TRUE(CheckImplemented(Objective::kNoObjective, Use::kPredict).ok());
  auto st = CheckImplemented(Objective::kNoObjective, Use::kTrain, "model.objective");  // trains as sentence-embedding
  EXPECT_EQ(st.code(), StatusCode::kUnimplemented);
  EXPECT_EQ(st.field(), "model.objective");
  EXPECT_NE(st.message().find("no-objective"), std::string::npos);
  EXPECT_NE(st.message().find("text-classification"), std::string::npos);  // what is available
  EXPECT_TRUE(CheckImplemented(Objective::kCausalLm, Use::kTrain).ok());
  EXPECT_TRUE(CheckImplemented(Objective::kCausalLm, Use::kPredict).ok());
  EXPECT_TRUE(CheckImplemented(Objective::kTokenClassification, Use::kTrain).ok());
  EXPECT_TRUE(CheckImplemented(Objective::kTokenClassification, Use::kPredict).ok());
  EXPECT_TRUE(CheckImplemented(Objective::kNextSentencePrediction, Use::kTrain).ok());
  EXPECT_TRUE(CheckImplemented(Objective::kNextSentencePrediction, Use::kPredict).ok());
  EXPECT_TRUE(CheckImplemented(Objective::kQuestionAnswering, Use::kTrain).ok());
  EXPECT_TRUE(CheckImplemented(Objective::kQuestionAnswering, Use::kPredict).ok());
  for (Objective o : ImplementedObjectives(Use::kPredict, Modality::kText)) EXPECT_EQ(ModalityOf(o), Modality::kText);
}

}  // namespace
}  // namespace mlaas
