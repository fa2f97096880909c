#include "serve/infer_request.h"

namespace mlaas::serve {

using nlohmann::json;

namespace {

constexpr size_t kMaxRank = 8;

// Flattens nested arrays (the protocol allows tensor data flat or nested) into `out`. The
// nesting is bounded by the parser's depth limit on request bodies (common/json_file.h).
void Flatten(const json& data, std::vector<const json*>& out) {
  if (data.is_array()) {
    for (const auto& e : data) Flatten(e, out);
  } else {
    out.push_back(&data);
  }
}

// The shape's dimensions, each a non-negative integer, and their product, overflow-checked.
struct Shape {
  std::vector<int64_t> dims;
  int64_t elements = 1;
};

Result<Shape> ParseShape(const json& in, const std::string& field) {
  auto shape = in.find("shape");
  if (shape == in.end() || !shape->is_array()) return InvalidArgument("shape must be a list of integers", field);
  if (shape->size() > kMaxRank) return InvalidArgument("shape has more than 8 dimensions", field);
  Shape s;
  for (const auto& d : *shape) {
    if (!d.is_number_integer() || (d.is_number_integer() && !d.is_number_unsigned() && d.get<int64_t>() < 0))
      return InvalidArgument("shape must hold non-negative integers", field);
    if (d.is_number_unsigned() && d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      return InvalidArgument("shape is too large", field);
    const int64_t v = d.get<int64_t>();
    s.dims.push_back(v);
    if (__builtin_mul_overflow(s.elements, v, &s.elements) || s.elements > (int64_t{1} << 31))
      return InvalidArgument("shape is too large", field);
  }
  // A zero dimension makes the product 0 whatever the others say: bound them anyway.
  for (int64_t v : s.dims)
    if (v > (int64_t{1} << 31)) return InvalidArgument("shape is too large", field);
  return s;
}

Result<std::vector<const json*>> Data(const json& in, const Shape& shape, const std::string& field) {
  auto data = in.find("data");
  if (data == in.end() || !data->is_array()) return InvalidArgument("data must be a list", field + ".data");
  std::vector<const json*> flat;
  Flatten(*data, flat);
  if (static_cast<int64_t>(flat.size()) != shape.elements)
    return InvalidArgument("data holds " + std::to_string(flat.size()) + " elements but shape says " +
                               std::to_string(shape.elements),
                           field + ".data");
  return flat;
}

std::string StringMember(const json& in, const char* name) {
  auto it = in.find(name);
  return it != in.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// A BYTES input's strings, within the row limit.
Result<std::vector<std::string>> Strings(const json& in, const std::string& field, const InferParseLimits& limits) {
  MLAAS_ASSIGN_OR_RETURN(Shape shape, ParseShape(in, field + ".shape"));
  if (shape.elements == 0) return InvalidArgument("no inputs: the shape holds a zero", field + ".shape");
  if (shape.elements > limits.max_rows)
    return InvalidArgument(std::to_string(shape.elements) + " texts in one request; at most " +
                               std::to_string(limits.max_rows) + " are accepted",
                           field + ".shape");
  MLAAS_ASSIGN_OR_RETURN(auto flat, Data(in, shape, field));
  std::vector<std::string> out;
  out.reserve(flat.size());
  for (size_t i = 0; i < flat.size(); ++i) {
    if (!flat[i]->is_string())
      return InvalidArgument("element " + std::to_string(i) + " of a BYTES input must be a string", field + ".data");
    out.push_back(flat[i]->get<std::string>());
  }
  return out;
}

bool IsPairName(const std::string& name) { return name == "pair_text" || name == "text_pair"; }

}  // namespace

Result<InferRequest> ParseInferRequestV2(const json& body, const InferParseLimits& limits) {
  if (!body.is_object()) return InvalidArgument("the request body must be a JSON object");
  InferRequest r;
  auto params = body.find("parameters");
  MLAAS_ASSIGN_OR_RETURN(r.options,
                         predict::ParseOutputOptions(params == body.end() ? json() : *params, "parameters"));
  if (auto outputs = body.find("outputs"); outputs != body.end() && !outputs->is_null()) {
    if (!outputs->is_array() || outputs->size() > 8) return InvalidArgument("outputs must be a list of at most 8", "outputs");
    for (size_t i = 0; i < outputs->size(); ++i) {
      const json& o = (*outputs)[i];
      if (!o.is_object() || StringMember(o, "name").empty())
        return InvalidArgument("an output must be {\"name\": ...}", "outputs[" + std::to_string(i) + "].name");
      r.outputs.push_back(StringMember(o, "name"));
    }
  }
  auto inputs_it = body.find("inputs");
  if (inputs_it == body.end() || !inputs_it->is_array() || inputs_it->empty())
    return InvalidArgument("inputs must be a non-empty list of tensors", "inputs");
  const json& inputs = *inputs_it;
  if (inputs.size() > 8) return InvalidArgument("at most 8 input tensors are accepted", "inputs");
  const json *text = nullptr, *second = nullptr, *ids = nullptr, *mask = nullptr, *types = nullptr, *pixels = nullptr;
  std::string text_field, second_field, ids_field, mask_field, types_field, pixels_field;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const json& in = inputs[i];
    const std::string field = "inputs[" + std::to_string(i) + "]";
    if (!in.is_object()) return InvalidArgument("an input must be an object {name, datatype, shape, data}", field);
    const std::string name = StringMember(in, "name"), type = StringMember(in, "datatype");
    if (name.empty()) return InvalidArgument("an input needs a name", field + ".name");
    if (type == "BYTES") {
      if (second)
        return InvalidArgument("at most two BYTES inputs: a text with its pair_text, or a question with its context", field);
      if (text) {
        second = &in;
        second_field = field;
      } else {
        text = &in;
        text_field = field;
      }
    } else if (type == "FP32" || type == "UINT8") {
      if (pixels) return InvalidArgument("only one image tensor (FP32 or UINT8) is accepted", field);
      pixels = &in;
      pixels_field = field;
    } else if (type != "INT64" && type != "INT32") {
      return InvalidArgument("datatype must be BYTES, INT64, INT32 (texts) or FP32, UINT8 (images)", field + ".datatype");
    } else if (name == "input_ids") {
      if (ids) return InvalidArgument("input_ids is given twice", field);
      ids = &in;
      ids_field = field;
    } else if (name == "attention_mask") {
      if (mask) return InvalidArgument("attention_mask is given twice", field);
      mask = &in;
      mask_field = field;
    } else if (name == "token_type_ids") {
      if (types) return InvalidArgument("token_type_ids is given twice", field);
      types = &in;
      types_field = field;
    } else {
      return InvalidArgument("unknown input '" + name + "': give texts as a BYTES input, or INT64 input_ids (with an "
                             "optional attention_mask and token_type_ids)",
                             field + ".name");
    }
  }
  if ((text != nullptr) + (ids != nullptr) + (pixels != nullptr) > 1)
    return InvalidArgument("give one kind of input: a BYTES input, input_ids, or an image tensor", "inputs");
  if (pixels) {
    MLAAS_ASSIGN_OR_RETURN(Shape shape, ParseShape(*pixels, pixels_field + ".shape"));
    if (shape.dims.size() != 4 || shape.dims[0] < 1 || (shape.dims[1] != 1 && shape.dims[1] != 3) || shape.dims[2] < 1 ||
        shape.dims[3] < 1)
      return InvalidArgument("an image tensor has shape [images, channels (1 or 3), height, width]", pixels_field + ".shape");
    if (shape.dims[0] > limits.max_rows)
      return InvalidArgument(std::to_string(shape.dims[0]) + " images in one request; at most " +
                                 std::to_string(limits.max_rows) + " are accepted",
                             pixels_field + ".shape");
    MLAAS_ASSIGN_OR_RETURN(auto flat, Data(*pixels, shape, pixels_field));
    const bool bytes = StringMember(*pixels, "datatype") == "UINT8";
    r.pixels.reserve(flat.size());
    for (const json* v : flat) {
      if (!v->is_number()) return InvalidArgument("an image tensor holds numbers", pixels_field + ".data");
      const double x = v->get<double>();
      if (bytes ? !(v->is_number_integer() && x >= 0 && x <= 255) : !(x >= 0 && x <= 1))
        return InvalidArgument(bytes ? "UINT8 pixels are integers 0..255" : "FP32 pixels are 0..1", pixels_field + ".data");
      r.pixels.push_back(static_cast<float>(bytes ? x / 255.0 : x));
    }
    r.images = shape.dims[0];
    r.channels = shape.dims[1];
    r.height = shape.dims[2];
    r.width = shape.dims[3];
    r.field = pixels_field;
    return r;
  }
  if (text) {
    if (mask || types)
      return InvalidArgument("attention_mask and token_type_ids go with input_ids, not texts",
                             mask ? mask_field : types_field);
    // The second text of a pair (or a question's context) may come first in the list.
    if (second && (IsPairName(StringMember(*text, "name")) || StringMember(*text, "name") == "context")) {
      std::swap(text, second);
      std::swap(text_field, second_field);
    }
    const std::string first = StringMember(*text, "name"), other = second ? StringMember(*second, "name") : "";
    if (!second && (IsPairName(first) || first == "context"))
      return InvalidArgument(first + " needs " + (first == "context" ? "a question" : "the texts it pairs with") +
                                 " in another BYTES input",
                             text_field + ".name");
    if (second) {
      const bool pair = IsPairName(other) && !IsPairName(first) && first != "question" && first != "context";
      const bool question = first == "question" && other == "context";
      if (!pair && !question)
        return InvalidArgument("two BYTES inputs are a text with its pair_text, or a question with its context",
                               second_field + ".name");
    }
    MLAAS_ASSIGN_OR_RETURN(r.texts, Strings(*text, text_field, limits));
    r.field = text_field + ".data";
    if (second) {
      MLAAS_ASSIGN_OR_RETURN(auto seconds, Strings(*second, second_field, limits));
      if (seconds.size() != r.texts.size())
        return InvalidArgument(other + " holds " + std::to_string(seconds.size()) + " texts but " + first + " holds " +
                                   std::to_string(r.texts.size()) + ": give one for each",
                               second_field + ".shape");
      (other == "context" ? r.contexts : r.pairs) = std::move(seconds);
      r.second_field = second_field + ".data";
    }
    return r;
  }
  if (!ids) return InvalidArgument("no input: give texts as a BYTES input (or input_ids)", "inputs");
  MLAAS_ASSIGN_OR_RETURN(Shape shape, ParseShape(*ids, ids_field + ".shape"));
  if (shape.dims.size() != 2 || shape.dims[0] < 1 || shape.dims[1] < 1)
    return InvalidArgument("input_ids must have shape [batch, sequence], both at least 1", ids_field + ".shape");
  const int64_t rows = shape.dims[0], cols = shape.dims[1];
  if (rows > limits.max_rows)
    return InvalidArgument(std::to_string(rows) + " inputs in one request; at most " + std::to_string(limits.max_rows) +
                               " are accepted",
                           ids_field + ".shape");
  if (cols > limits.max_row_tokens)
    return InvalidArgument(std::to_string(cols) + " tokens per input; at most " + std::to_string(limits.max_row_tokens) +
                               " are accepted",
                           ids_field + ".shape");
  MLAAS_ASSIGN_OR_RETURN(auto flat, Data(*ids, shape, ids_field));
  std::vector<const json*> flat_mask, flat_types;
  if (mask) {
    MLAAS_ASSIGN_OR_RETURN(Shape mask_shape, ParseShape(*mask, mask_field + ".shape"));
    if (mask_shape.dims != shape.dims) return InvalidArgument("attention_mask must have input_ids' shape", mask_field + ".shape");
    MLAAS_ASSIGN_OR_RETURN(flat_mask, Data(*mask, mask_shape, mask_field));
  }
  if (types) {
    MLAAS_ASSIGN_OR_RETURN(Shape types_shape, ParseShape(*types, types_field + ".shape"));
    if (types_shape.dims != shape.dims)
      return InvalidArgument("token_type_ids must have input_ids' shape", types_field + ".shape");
    MLAAS_ASSIGN_OR_RETURN(flat_types, Data(*types, types_shape, types_field));
  }
  r.token_ids.reserve(static_cast<size_t>(rows));
  for (int64_t b = 0; b < rows; ++b) {
    std::vector<int64_t> row, row_types;
    for (int64_t t = 0; t < cols; ++t) {
      const size_t k = static_cast<size_t>(b * cols + t);
      if (!flat[k]->is_number_integer()) return InvalidArgument("input_ids must be integers", ids_field + ".data");
      if (mask) {
        if (!flat_mask[k]->is_number_integer())
          return InvalidArgument("attention_mask must hold integers", mask_field + ".data");
        if (flat_mask[k]->get<int64_t>() == 0) continue;
      }
      if (types) {
        if (!flat_types[k]->is_number_integer() || (flat_types[k]->get<int64_t>() != 0 && flat_types[k]->get<int64_t>() != 1))
          return InvalidArgument("token_type_ids must hold 0 (first text) or 1 (second)", types_field + ".data");
        row_types.push_back(flat_types[k]->get<int64_t>());
      }
      row.push_back(flat[k]->get<int64_t>());
    }
    r.token_ids.push_back(std::move(row));
    if (types) r.token_type_ids.push_back(std::move(row_types));
  }
  r.field = ids_field;
  return r;
}

}  // namespace mlaas::serve
