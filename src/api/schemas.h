// JSON schemas of the request blocks of SPEC.md and of each route's body. They validate
// requests and are published, unchanged, in /openapi.json.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mlaas::api::schemas {

nlohmann::json Tokenizer();
nlohmann::json ModelSource();  // the model block of a model import
nlohmann::json Model(const std::vector<std::string>& objectives, bool objective_required);
// The model block of a training request: Model() plus what training sets on the model.
nlohmann::json TrainModel(const std::vector<std::string>& objectives);
nlohmann::json ModelTrain();
// `resources` of an async task: what its worker must offer (tasks/resources.h).
nlohmann::json Resources();
// A deploy request's resources block: the servers that may load it (labels, GPUs).
nlohmann::json DeploymentResources();
nlohmann::json Dataset(const std::vector<std::string>& formats);
nlohmann::json Save(const std::string& format = "");  // model_save / vector_store_save
nlohmann::json TextInput(bool allow_top_k);           // search_input
nlohmann::json NlpPredictInput();                     // predict_input of NLP predict
nlohmann::json SearchInput();                         // search_input of the search endpoints
nlohmann::json ImageInput();
// An image model block: Model's, with an image preset, num_channels and image_size.
nlohmann::json ImageModel(const std::vector<std::string>& objectives, bool objective_required);
// Image training: a saved image model's path or a preset, with its input (size, channels,
// normalisation); the image dataset of issue 22's contract.
nlohmann::json ImageTrainModel(const std::vector<std::string>& objectives);
nlohmann::json ImageDataset();
nlohmann::json TokenizerTrain();
nlohmann::json CatalogTarget();       // "catalog" block of a training request
nlohmann::json Sweep();               // "sweep" block of a hyperparameter sweep request
nlohmann::json Deployment();          // POST /api/v1/deployments
nlohmann::json InferenceRequestV2();  // Open Inference Protocol v2 infer request

// An object schema with these properties, `required` names, and no other fields.
nlohmann::json Object(nlohmann::json properties, std::vector<std::string> required);

// Response shapes, for the OpenAPI document.
nlohmann::json TaskView();
nlohmann::json TaskAccepted();
nlohmann::json ErrorResponse();
nlohmann::json ObjectInfo();

}  // namespace mlaas::api::schemas
