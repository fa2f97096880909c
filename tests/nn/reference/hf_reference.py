#!/usr/bin/python3
"""Reference check of mlaas's transformer engine against the Hugging Face model definitions.

This file re-implements, in plain PyTorch (Debian's python3-torch), the forward passes of
transformers' BertModel / BertForSequenceClassification / BertForMaskedLM, the DistilBERT,
RoBERTa and Longformer equivalents (and more heads, and GPT-2), with the same module and
parameter names, following the published modeling_bert.py, modeling_distilbert.py,
modeling_roberta.py and modeling_longformer.py. It also reads and writes the
safetensors format itself (the format is a JSON header and raw little-endian bytes).

  hf_reference.py check DIR   for every DIR/ours-*/ written by mlaas: load config.json and
                              model.safetensors strictly (every name must match), run the
                              inputs of io.safetensors and compare hidden states and logits
                              with mlaas's; max abs difference must be <= 1e-4.
  hf_reference.py write DIR   write DIR/py-*/ model directories (random weights, some in F16 /
                              BF16, one sharded) with inputs and this implementation's outputs,
                              for mlaas to load and compare.
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

TOLERANCE = 1e-4

# ------------------------------------------------------------------------------- safetensors

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
          "I64": torch.int64, "I32": torch.int32}
NAMES = {v: k for k, v in DTYPES.items()}


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = DTYPES[info["dtype"]]
        if end == begin:
            out[name] = torch.empty(info["shape"], dtype=dtype)
        else:
            out[name] = torch.frombuffer(bytearray(blob[base + begin:base + end]), dtype=dtype).reshape(info["shape"])
    return out


def write_safetensors(path, tensors):
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        data = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + b"".join(chunks))


# ------------------------------------------------------------------------------- activations

class NewGELUActivation(nn.Module):  # transformers.activations.NewGELUActivation
    def forward(self, x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def act_fn(name):
    return {"gelu": nn.GELU(), "gelu_new": NewGELUActivation(), "relu": nn.ReLU(), "silu": nn.SiLU(),
            "tanh": nn.Tanh()}[name]


# ------------------------------------------------------------------------------- BERT / RoBERTa

def summary(c, h, mask):
    # What the classifier reads: [CLS] as in transformers, or (config classifier_pooling "mean",
    # the platform's option, named as ModernBERT names it) the mean over the unpadded tokens.
    if c.__dict__.get("classifier_pooling", "cls") != "mean":
        return h[:, 0]
    m = (torch.ones(h.shape[:2]) if mask is None else mask).to(h.dtype).unsqueeze(-1)
    return (h * m).sum(1) / m.sum(1).clamp_min(1e-9)


class Cfg:
    def __init__(self, d):
        self.__dict__.update(d)
        self.num_labels = len(d.get("id2label", {"0": 0, "1": 1}))


class BertEmbeddings(nn.Module):
    def __init__(self, c, roberta=False):
        super().__init__()
        self.roberta, self.padding_idx = roberta, c.pad_token_id
        self.position_embedding_type = getattr(c, "position_embedding_type", "absolute")
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=c.pad_token_id)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size,
                                                padding_idx=c.pad_token_id if roberta else None)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids=None):
        if self.roberta:  # create_position_ids_from_input_ids
            mask = input_ids.ne(self.padding_idx).int()
            position_ids = (torch.cumsum(mask, dim=1).type_as(mask) * mask).long() + self.padding_idx
        else:
            position_ids = torch.arange(input_ids.size(1)).unsqueeze(0)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        embeddings = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        if self.position_embedding_type == "absolute":
            embeddings += self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


class BertSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.num_attention_heads = c.num_attention_heads
        self.attention_head_size = c.hidden_size // c.num_attention_heads
        self.all_head_size = c.hidden_size
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(c.hidden_size, c.hidden_size)
        self.value = nn.Linear(c.hidden_size, c.hidden_size)
        self.dropout = nn.Dropout(c.attention_probs_dropout_prob)
        self.position_embedding_type = getattr(c, "position_embedding_type", "absolute")
        if self.position_embedding_type in ("relative_key", "relative_key_query"):
            self.max_position_embeddings = c.max_position_embeddings
            self.distance_embedding = nn.Embedding(2 * c.max_position_embeddings - 1, self.attention_head_size)

    def transpose_for_scores(self, x):
        x = x.view(x.size()[:-1] + (self.num_attention_heads, self.attention_head_size))
        return x.permute(0, 2, 1, 3)

    def forward(self, hidden_states, attention_mask):
        q = self.transpose_for_scores(self.query(hidden_states))
        k = self.transpose_for_scores(self.key(hidden_states))
        v = self.transpose_for_scores(self.value(hidden_states))
        scores = torch.matmul(q, k.transpose(-1, -2))
        if self.position_embedding_type in ("relative_key", "relative_key_query"):
            # modeling_bert.py: a distance embedding per (query l, key r), l - r shifted to >= 0,
            # scored with the query (and the key), before the scale.
            t = hidden_states.size(1)
            distance = torch.arange(t).view(-1, 1) - torch.arange(t).view(1, -1)
            positional = self.distance_embedding(distance + self.max_position_embeddings - 1).to(q.dtype)
            scores = scores + torch.einsum("bhld,lrd->bhlr", q, positional)
            if self.position_embedding_type == "relative_key_query":
                scores = scores + torch.einsum("bhrd,lrd->bhlr", k, positional)
        scores = scores / math.sqrt(self.attention_head_size)
        if attention_mask is not None:
            scores = scores + attention_mask
        probs = self.dropout(F.softmax(scores, dim=-1))
        context = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        return context.view(context.size()[:-2] + (self.all_head_size,))


class BertSelfOutput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, hidden_states, input_tensor):
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + input_tensor)


class BertAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self = BertSelfAttention(c)
        self.output = BertSelfOutput(c)

    def forward(self, hidden_states, attention_mask):
        return self.output(self.self(hidden_states, attention_mask), hidden_states)


class BertIntermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)
        self.intermediate_act_fn = act_fn(c.hidden_act)

    def forward(self, x):
        return self.intermediate_act_fn(self.dense(x))


class BertOutput(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.intermediate_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, hidden_states, input_tensor):
        return self.LayerNorm(self.dropout(self.dense(hidden_states)) + input_tensor)


class BertLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = BertAttention(c)
        self.intermediate = BertIntermediate(c)
        self.output = BertOutput(c)

    def forward(self, hidden_states, attention_mask):
        attention_output = self.attention(hidden_states, attention_mask)
        return self.output(self.intermediate(attention_output), attention_output)


class BertEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(c) for _ in range(c.num_hidden_layers)])

    def forward(self, h, mask):
        for layer in self.layer:
            h = layer(h, mask)
        return h


class BertPooler(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, h, mask):
        return self.activation(self.dense(summary(self.c, h, mask)))


class BertModel(nn.Module):  # also RobertaModel (roberta=True)
    def __init__(self, c, add_pooling_layer=True, roberta=False):
        super().__init__()
        self.embeddings = BertEmbeddings(c, roberta)
        self.encoder = BertEncoder(c)
        self.pooler = BertPooler(c) if add_pooling_layer else None

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        dtype = torch.float32
        extended = (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min
        h = self.encoder(self.embeddings(input_ids, token_type_ids), extended)
        return h, (self.pooler(h, attention_mask) if self.pooler is not None else None)


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)
        self.transform_act_fn = act_fn(c.hidden_act)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, h):
        return self.LayerNorm(self.transform_act_fn(self.dense(h)))


class BertLMPredictionHead(nn.Module):
    def __init__(self, c, embeddings):
        super().__init__()
        self.transform = BertPredictionHeadTransform(c)
        self.bias = nn.Parameter(torch.zeros(c.vocab_size))
        self.embeddings = [embeddings]  # the tied decoder weight (not a second parameter)

    def forward(self, h):
        return F.linear(self.transform(h), self.embeddings[0].weight, self.bias)


class BertOnlyMLMHead(nn.Module):
    def __init__(self, c, embeddings):
        super().__init__()
        self.predictions = BertLMPredictionHead(c, embeddings)

    def forward(self, h):
        return self.predictions(h)


class BertForSequenceClassification(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bert = BertModel(c)
        self.dropout = nn.Dropout(c.classifier_dropout if c.__dict__.get("classifier_dropout") is not None
                                  else c.hidden_dropout_prob)
        self.classifier = nn.Linear(c.hidden_size, c.num_labels)

    def forward(self, ids, mask, types):
        h, pooled = self.bert(ids, mask, types)
        return h, self.classifier(self.dropout(pooled))


class BertForMaskedLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bert = BertModel(c, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(c, self.bert.embeddings.word_embeddings)

    def forward(self, ids, mask, types):
        h, _ = self.bert(ids, mask, types)
        return h, self.cls(h)


class RobertaClassificationHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)
        drop = c.classifier_dropout if c.__dict__.get("classifier_dropout") is not None else c.hidden_dropout_prob
        self.dropout = nn.Dropout(drop)
        self.out_proj = nn.Linear(c.hidden_size, c.num_labels)

    def forward(self, features, mask):
        x = self.dropout(summary(self.c, features, mask))
        x = self.dropout(torch.tanh(self.dense(x)))
        return self.out_proj(x)


class RobertaLMHead(nn.Module):
    def __init__(self, c, embeddings):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)
        self.layer_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(c.vocab_size))
        self.embeddings = [embeddings]

    def forward(self, features):
        x = self.layer_norm(F.gelu(self.dense(features)))
        return F.linear(x, self.embeddings[0].weight, self.bias)


class RobertaForSequenceClassification(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.roberta = BertModel(c, add_pooling_layer=False, roberta=True)
        self.classifier = RobertaClassificationHead(c)

    def forward(self, ids, mask, types):
        h, _ = self.roberta(ids, mask, types)
        return h, self.classifier(h, mask)


class RobertaForMaskedLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.roberta = BertModel(c, add_pooling_layer=False, roberta=True)
        self.lm_head = RobertaLMHead(c, self.roberta.embeddings.word_embeddings)

    def forward(self, ids, mask, types):
        h, _ = self.roberta(ids, mask, types)
        return h, self.lm_head(h)


def dropout_of(c):
    return c.classifier_dropout if c.__dict__.get("classifier_dropout") is not None else c.hidden_dropout_prob


class BertForTokenClassification(nn.Module):
    # Also RobertaForTokenClassification (body named "roberta").
    def __init__(self, c, roberta=False):
        super().__init__()
        body = BertModel(c, add_pooling_layer=False, roberta=roberta)
        self.body_name = "roberta" if roberta else "bert"
        setattr(self, self.body_name, body)
        self.dropout = nn.Dropout(dropout_of(c))
        self.classifier = nn.Linear(c.hidden_size, c.num_labels)

    def forward(self, ids, mask, types):
        h, _ = getattr(self, self.body_name)(ids, mask, types)
        return h, self.classifier(self.dropout(h))


class BertForQuestionAnswering(nn.Module):
    # Also RobertaForQuestionAnswering; logits [batch, seq, 2] (start, end), as split by transformers.
    def __init__(self, c, roberta=False):
        super().__init__()
        body = BertModel(c, add_pooling_layer=False, roberta=roberta)
        self.body_name = "roberta" if roberta else "bert"
        setattr(self, self.body_name, body)
        self.qa_outputs = nn.Linear(c.hidden_size, 2)

    def forward(self, ids, mask, types):
        h, _ = getattr(self, self.body_name)(ids, mask, types)
        return h, self.qa_outputs(h)


class BertOnlyNSPHead(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.seq_relationship = nn.Linear(c.hidden_size, 2)

    def forward(self, pooled):
        return self.seq_relationship(pooled)


class BertForNextSentencePrediction(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bert = BertModel(c)
        self.cls = BertOnlyNSPHead(c)

    def forward(self, ids, mask, types):
        h, pooled = self.bert(ids, mask, types)
        return h, self.cls(pooled)


# ------------------------------------------------------------------------------- Longformer
# modeling_longformer.py: RoBERTa's embeddings, layers and heads around LongformerSelfAttention.
# A token attends to the tokens within attention_window // 2 on each side (padding and global
# tokens left out of that window) and to every global token; a global token attends to every
# token that is not padding, through query_global / key_global / value_global. Written here as
# one full masked attention (quadratic and plain), not transformers' chunked computation.

class LongformerSelfAttention(nn.Module):
    def __init__(self, c, layer_id):
        super().__init__()
        self.h, self.d = c.num_attention_heads, c.hidden_size // c.num_attention_heads
        for name in ("query", "key", "value", "query_global", "key_global", "value_global"):
            setattr(self, name, nn.Linear(c.hidden_size, c.hidden_size))
        w = c.attention_window
        self.one_sided = (w[layer_id] if isinstance(w, list) else w) // 2
        self.dropout = nn.Dropout(c.attention_probs_dropout_prob)

    def split(self, x):
        return x.view(x.size(0), x.size(1), self.h, self.d).transpose(1, 2)

    def forward(self, x, pad, glob):
        B, T, H = x.shape
        lowest = torch.finfo(x.dtype).min
        q = self.split(self.query(x)) / math.sqrt(self.d)
        k, v = self.split(self.key(x)), self.split(self.value(x))
        i = torch.arange(T)
        band = (i[:, None] - i[None, :]).abs() <= self.one_sided
        allowed = (band[None] & ~pad[:, None, :] & ~glob[:, None, :]) | glob[:, None, :]  # [B, query, key]
        scores = (q @ k.transpose(-1, -2)).masked_fill(~allowed[:, None], lowest)
        probs = F.softmax(scores, -1).masked_fill(pad[:, None, :, None], 0.0)
        out = self.dropout(probs) @ v
        qg = self.split(self.query_global(x)) / math.sqrt(self.d)
        sg = (qg @ self.split(self.key_global(x)).transpose(-1, -2)).masked_fill(pad[:, None, None, :], lowest)
        og = self.dropout(F.softmax(sg, -1)) @ self.split(self.value_global(x))
        out = torch.where(glob[:, None, :, None], og, out)
        return out.transpose(1, 2).reshape(B, T, H)


class LongformerAttention(nn.Module):
    def __init__(self, c, layer_id):
        super().__init__()
        self.self = LongformerSelfAttention(c, layer_id)
        self.output = BertSelfOutput(c)

    def forward(self, x, pad, glob):
        return self.output(self.self(x, pad, glob), x)


class LongformerLayer(nn.Module):
    def __init__(self, c, layer_id):
        super().__init__()
        self.attention = LongformerAttention(c, layer_id)
        self.intermediate = BertIntermediate(c)
        self.output = BertOutput(c)

    def forward(self, x, pad, glob):
        a = self.attention(x, pad, glob)
        return self.output(self.intermediate(a), a)


class LongformerEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([LongformerLayer(c, i) for i in range(c.num_hidden_layers)])

    def forward(self, h, pad, glob):
        for layer in self.layer:
            h = layer(h, pad, glob)
        return h


class LongformerModel(nn.Module):
    def __init__(self, c, add_pooling_layer=True):
        super().__init__()
        self.embeddings = BertEmbeddings(c, roberta=True)
        self.encoder = LongformerEncoder(c)
        self.pooler = BertPooler(c) if add_pooling_layer else None

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, global_attention_mask=None):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if global_attention_mask is None:
            global_attention_mask = torch.zeros_like(input_ids)
        pad = attention_mask == 0
        glob = (global_attention_mask != 0) & ~pad
        h = self.encoder(self.embeddings(input_ids, token_type_ids), pad, glob)
        return h, (self.pooler(h, attention_mask) if self.pooler is not None else None)


def first_token_global(ids, glob):
    # LongformerForSequenceClassification: global attention on <s> when none is given.
    if glob is None:
        glob = torch.zeros_like(ids)
        glob[:, 0] = 1
    return glob


class LongformerForSequenceClassification(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.longformer = LongformerModel(c, add_pooling_layer=False)
        self.classifier = RobertaClassificationHead(c)

    def forward(self, ids, mask, types, glob=None):
        h, _ = self.longformer(ids, mask, types, first_token_global(ids, glob))
        return h, self.classifier(h, mask)


class LongformerForMaskedLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.longformer = LongformerModel(c, add_pooling_layer=False)
        self.lm_head = RobertaLMHead(c, self.longformer.embeddings.word_embeddings)

    def forward(self, ids, mask, types, glob=None):
        h, _ = self.longformer(ids, mask, types, glob)
        return h, self.lm_head(h)


class LongformerForTokenClassification(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.longformer = LongformerModel(c, add_pooling_layer=False)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)
        self.classifier = nn.Linear(c.hidden_size, c.num_labels)

    def forward(self, ids, mask, types, glob=None):
        h, _ = self.longformer(ids, mask, types, glob)
        return h, self.classifier(self.dropout(h))


# ------------------------------------------------------------------------------- DistilBERT

class DistilEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.dim, padding_idx=c.pad_token_id)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.dim)
        self.LayerNorm = nn.LayerNorm(c.dim, eps=1e-12)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, input_ids):
        position_ids = torch.arange(input_ids.size(1)).unsqueeze(0).expand_as(input_ids)
        return self.dropout(self.LayerNorm(self.word_embeddings(input_ids) + self.position_embeddings(position_ids)))


class MultiHeadSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n_heads, self.dim = c.n_heads, c.dim
        self.dropout = nn.Dropout(p=c.attention_dropout)
        self.q_lin = nn.Linear(c.dim, c.dim)
        self.k_lin = nn.Linear(c.dim, c.dim)
        self.v_lin = nn.Linear(c.dim, c.dim)
        self.out_lin = nn.Linear(c.dim, c.dim)

    def forward(self, query, key, value, mask):
        bs, q_length, dim = query.size()
        k_length = key.size(1)
        dim_per_head = self.dim // self.n_heads
        mask_reshp = (bs, 1, 1, k_length)

        def shape(x):
            return x.view(bs, -1, self.n_heads, dim_per_head).transpose(1, 2)

        def unshape(x):
            return x.transpose(1, 2).contiguous().view(bs, -1, self.n_heads * dim_per_head)

        q = shape(self.q_lin(query))
        k = shape(self.k_lin(key))
        v = shape(self.v_lin(value))
        q = q / math.sqrt(dim_per_head)
        scores = torch.matmul(q, k.transpose(2, 3))
        mask = (mask == 0).view(mask_reshp).expand_as(scores)
        scores = scores.masked_fill(mask, torch.tensor(torch.finfo(scores.dtype).min))
        weights = self.dropout(nn.functional.softmax(scores, dim=-1))
        return self.out_lin(unshape(torch.matmul(weights, v)))


class FFN(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dropout = nn.Dropout(p=c.dropout)
        self.lin1 = nn.Linear(c.dim, c.hidden_dim)
        self.lin2 = nn.Linear(c.hidden_dim, c.dim)
        self.activation = act_fn(c.activation)

    def forward(self, x):
        return self.dropout(self.lin2(self.activation(self.lin1(x))))


class TransformerBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = MultiHeadSelfAttention(c)
        self.sa_layer_norm = nn.LayerNorm(normalized_shape=c.dim, eps=1e-12)
        self.ffn = FFN(c)
        self.output_layer_norm = nn.LayerNorm(normalized_shape=c.dim, eps=1e-12)

    def forward(self, x, attn_mask):
        sa_output = self.sa_layer_norm(self.attention(x, x, x, attn_mask) + x)
        return self.output_layer_norm(self.ffn(sa_output) + sa_output)


class Transformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([TransformerBlock(c) for _ in range(c.n_layers)])

    def forward(self, x, mask):
        for layer in self.layer:
            x = layer(x, mask)
        return x


class DistilBertModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = DistilEmbeddings(c)
        self.transformer = Transformer(c)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        return self.transformer(self.embeddings(input_ids), attention_mask), None


class DistilBertForSequenceClassification(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.distilbert = DistilBertModel(c)
        self.c = c
        self.pre_classifier = nn.Linear(c.dim, c.dim)
        self.classifier = nn.Linear(c.dim, c.num_labels)
        self.dropout = nn.Dropout(c.seq_classif_dropout)

    def forward(self, ids, mask, types):
        h, _ = self.distilbert(ids, mask)
        x = self.dropout(nn.ReLU()(self.pre_classifier(summary(self.c, h, mask))))
        return h, self.classifier(x)


class DistilBertForMaskedLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.activation = act_fn(c.activation)
        self.distilbert = DistilBertModel(c)
        self.vocab_transform = nn.Linear(c.dim, c.dim)
        self.vocab_layer_norm = nn.LayerNorm(c.dim, eps=1e-12)
        self.vocab_projector = nn.Module()
        self.vocab_projector.bias = nn.Parameter(torch.zeros(c.vocab_size))  # weight tied to word embeddings

    def forward(self, ids, mask, types):
        h, _ = self.distilbert(ids, mask)
        x = self.vocab_layer_norm(self.activation(self.vocab_transform(h)))
        return h, F.linear(x, self.distilbert.embeddings.word_embeddings.weight, self.vocab_projector.bias)


class DistilBertForTokenClassification(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.distilbert = DistilBertModel(c)
        self.dropout = nn.Dropout(c.dropout)
        self.classifier = nn.Linear(c.dim, c.num_labels)

    def forward(self, ids, mask, types):
        h, _ = self.distilbert(ids, mask)
        return h, self.classifier(self.dropout(h))


class DistilBertForQuestionAnswering(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.distilbert = DistilBertModel(c)
        self.qa_outputs = nn.Linear(c.dim, 2)
        self.dropout = nn.Dropout(c.__dict__.get("qa_dropout", 0.1))

    def forward(self, ids, mask, types):
        h, _ = self.distilbert(ids, mask)
        return h, self.qa_outputs(self.dropout(h))


# ------------------------------------------------------------------------------- GPT-2
# modeling_gpt2.py's eager path: Conv1D projections (weights [in, out]), pre-LayerNorm blocks,
# the causal mask from a lower-triangular buffer (not saved), the lm_head tied to wte.

class Conv1D(nn.Module):
    def __init__(self, nf, nx):
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.empty(nx, nf))
        self.bias = nn.Parameter(torch.zeros(nf))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, x):
        size_out = x.size()[:-1] + (self.nf,)
        return torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight).view(size_out)


class GPT2Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        n = c.n_positions
        self.register_buffer("bias", torch.tril(torch.ones((n, n), dtype=torch.bool)).view(1, 1, n, n),
                             persistent=False)
        self.embed_dim, self.num_heads = c.n_embd, c.n_head
        self.head_dim = self.embed_dim // self.num_heads
        self.c_attn = Conv1D(3 * self.embed_dim, self.embed_dim)
        self.c_proj = Conv1D(self.embed_dim, self.embed_dim)
        self.attn_dropout = nn.Dropout(c.attn_pdrop)
        self.resid_dropout = nn.Dropout(c.resid_pdrop)

    def _attn(self, query, key, value, attention_mask):
        w = torch.matmul(query, key.transpose(-1, -2))
        w = w / torch.full([], value.size(-1) ** 0.5, dtype=w.dtype)
        ql, kl = query.size(-2), key.size(-2)
        causal = self.bias[:, :, kl - ql:kl, :kl]
        w = torch.where(causal, w, torch.full([], torch.finfo(w.dtype).min, dtype=w.dtype))
        if attention_mask is not None:
            w = w + attention_mask
        w = self.attn_dropout(F.softmax(w, dim=-1))
        return torch.matmul(w, value)

    def split(self, x):
        return x.view(x.size()[:-1] + (self.num_heads, self.head_dim)).permute(0, 2, 1, 3)

    def forward(self, h, attention_mask):
        q, k, v = self.c_attn(h).split(self.embed_dim, dim=2)
        out = self._attn(self.split(q), self.split(k), self.split(v), attention_mask)
        out = out.permute(0, 2, 1, 3).contiguous()
        out = out.view(out.size()[:-2] + (self.embed_dim,))
        return self.resid_dropout(self.c_proj(out))


class GPT2MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        inner = c.n_inner if getattr(c, "n_inner", None) else 4 * c.n_embd
        self.c_fc = Conv1D(inner, c.n_embd)
        self.c_proj = Conv1D(c.n_embd, inner)
        self.act = act_fn(c.activation_function)
        self.dropout = nn.Dropout(c.resid_pdrop)

    def forward(self, x):
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class GPT2Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1 = nn.LayerNorm(c.n_embd, eps=c.layer_norm_epsilon)
        self.attn = GPT2Attention(c)
        self.ln_2 = nn.LayerNorm(c.n_embd, eps=c.layer_norm_epsilon)
        self.mlp = GPT2MLP(c)

    def forward(self, x, attention_mask):
        x = x + self.attn(self.ln_1(x), attention_mask)
        return x + self.mlp(self.ln_2(x))


class GPT2Model(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.n_positions, c.n_embd)
        self.drop = nn.Dropout(c.embd_pdrop)
        self.h = nn.ModuleList([GPT2Block(c) for _ in range(c.n_layer)])
        self.ln_f = nn.LayerNorm(c.n_embd, eps=c.layer_norm_epsilon)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        positions = torch.arange(input_ids.size(1)).unsqueeze(0)
        x = self.drop(self.wte(input_ids) + self.wpe(positions))
        if attention_mask is not None:
            attention_mask = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for block in self.h:
            x = block(x, attention_mask)
        return self.ln_f(x)


class GPT2LMHeadModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transformer = GPT2Model(c)

    def forward(self, ids, mask, types=None):
        h = self.transformer(ids, mask)
        return h, torch.matmul(h, self.transformer.wte.weight.t())  # lm_head, tied

    def greedy(self, prompt, new_tokens):
        # Without a cache: the whole sequence again at every step (checks mlaas's cache).
        ids = list(prompt)
        for _ in range(new_tokens):
            _, logits = self(torch.tensor([ids]), None)
            ids.append(int(logits[0, -1].argmax()))
        return ids[len(prompt):]


def gpt2_config():
    return {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": 97, "n_positions": 40,
            "n_embd": 32, "n_layer": 2, "n_head": 4, "n_inner": None, "activation_function": "gelu_new",
            "resid_pdrop": 0.1, "embd_pdrop": 0.1, "attn_pdrop": 0.1, "layer_norm_epsilon": 1e-5,
            "initializer_range": 0.02, "bos_token_id": 96, "eos_token_id": 96}


def check_generation(model, io):
    # io: prompts (right-padded with their lengths) and mlaas's greedy continuations.
    if "generated" not in io:
        return True
    prompts, lengths, generated = io["prompt_ids"], io["prompt_lengths"], io["generated"]
    ok = True
    with torch.no_grad():
        for r in range(prompts.size(0)):
            want = model.greedy(prompts[r, :int(lengths[r])].tolist(), generated.size(1))
            if want != generated[r].tolist():
                print(f"  generation of prompt {r}: reference {want}, mlaas {generated[r].tolist()}")
                ok = False
    return ok


def write_generation(model, io):
    prompts = [[5, 17, 33, 8], [61], [2, 3, 4, 5, 6, 7]]
    width = max(len(p) for p in prompts)
    io["prompt_ids"] = torch.tensor([p + [0] * (width - len(p)) for p in prompts])
    io["prompt_lengths"] = torch.tensor([len(p) for p in prompts])
    with torch.no_grad():
        io["generated"] = torch.tensor([model.greedy(p, 6) for p in prompts])


CLASSES = {
    "GPT2LMHeadModel": GPT2LMHeadModel,
    "BertForSequenceClassification": BertForSequenceClassification, "BertForMaskedLM": BertForMaskedLM,
    "DistilBertForSequenceClassification": DistilBertForSequenceClassification,
    "DistilBertForMaskedLM": DistilBertForMaskedLM,
    "RobertaForSequenceClassification": RobertaForSequenceClassification, "RobertaForMaskedLM": RobertaForMaskedLM,
    "BertForTokenClassification": BertForTokenClassification,
    "RobertaForTokenClassification": lambda c: BertForTokenClassification(c, roberta=True),
    "DistilBertForTokenClassification": DistilBertForTokenClassification,
    "BertForQuestionAnswering": BertForQuestionAnswering,
    "RobertaForQuestionAnswering": lambda c: BertForQuestionAnswering(c, roberta=True),
    "DistilBertForQuestionAnswering": DistilBertForQuestionAnswering,
    "BertForNextSentencePrediction": BertForNextSentencePrediction,
    "BertModel": BertModel,
    "DistilBertModel": DistilBertModel,
    "RobertaModel": lambda c: BertModel(c, roberta=True),
    "LongformerModel": LongformerModel,
    "LongformerForSequenceClassification": LongformerForSequenceClassification,
    "LongformerForMaskedLM": LongformerForMaskedLM,
    "LongformerForTokenClassification": LongformerForTokenClassification,
}


def build(config):
    c = Cfg(config)
    cls = config["architectures"][0]
    model = CLASSES[cls](c)
    bare = cls.endswith("Model") and not cls.endswith("LMHeadModel")
    return model, bare


def run(model, bare, io):
    ids, mask = io["input_ids"], io["attention_mask"]
    types = io.get("token_type_ids")
    extra = (io["global_attention_mask"],) if "global_attention_mask" in io else ()  # Longformer's
    with torch.no_grad():
        if bare:
            h, _ = model(ids, mask, types, *extra)
            return h, None
        return model(ids, mask, types, *extra)


# ------------------------------------------------------------------------------- commands

def check(root):
    worst, failures, n = 0.0, [], 0
    for name in sorted(os.listdir(root)):
        d = os.path.join(root, name)
        if not name.startswith("ours-"):
            continue
        n += 1
        config = json.load(open(os.path.join(d, "config.json")))
        model, bare = build(config)
        model.eval()
        weights = {k: v.float() for k, v in read_safetensors(os.path.join(d, "model.safetensors")).items()}
        model.load_state_dict(weights, strict=True)  # every name must match, in both directions
        io = read_safetensors(os.path.join(d, "io.safetensors"))
        h, logits = run(model, bare, io)
        # Compared at the real tokens: what a padding position holds means nothing (mlaas's
        # inference skips the padding and writes zeros there; transformers computes it).
        keep = io["attention_mask"].bool()
        dh = (h - io["last_hidden_state"])[keep].abs().max().item()
        if logits is None:
            dl = 0.0
        elif logits.dim() == 3:  # per token (masked-LM, token classification, question answering)
            dl = (logits - io["logits"])[keep].abs().max().item()
        else:
            dl = (logits - io["logits"]).abs().max().item()
        worst = max(worst, dh, dl)
        generation = check_generation(model, io)
        print(f"{name:32s} hidden max|diff| {dh:.2e}  logits max|diff| {dl:.2e}"
              + ("  greedy generation matches" if "generated" in io and generation else ""))
        if not (dh <= TOLERANCE and dl <= TOLERANCE and generation):
            failures.append(name)
    if n == 0:
        print("no ours-* model directories found", file=sys.stderr)
        return 1
    print(f"checked {n} models written by mlaas; worst max|diff| {worst:.2e} (tolerance {TOLERANCE})")
    if failures:
        print("FAILED: " + ", ".join(failures), file=sys.stderr)
        return 1
    return 0


def tiny_config(arch, architecture, act="gelu"):
    labels = {"0": "neg", "1": "neutral", "2": "pos"}
    if arch == "distilbert":
        return {"architectures": [architecture], "model_type": "distilbert", "vocab_size": 97, "dim": 32,
                "n_layers": 2, "n_heads": 4, "hidden_dim": 48, "activation": act, "max_position_embeddings": 40,
                "dropout": 0.1, "attention_dropout": 0.1, "seq_classif_dropout": 0.2, "pad_token_id": 0,
                "initializer_range": 0.02, "sinusoidal_pos_embds": False, "id2label": labels}
    c = {"architectures": [architecture], "model_type": arch, "vocab_size": 97, "hidden_size": 32,
         "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 48, "hidden_act": act,
         "max_position_embeddings": 40, "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_dropout_prob": 0.1,
         "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02, "pad_token_id": 0, "id2label": labels}
    if arch in ("roberta", "longformer"):
        c.update({"pad_token_id": 1, "type_vocab_size": 1, "layer_norm_eps": 1e-5, "max_position_embeddings": 42})
    if arch == "longformer":
        c["attention_window"] = [6, 2]  # the 8 tokens are padded to 12 by transformers; windows of 3 and 1 each side
    return c


def inputs(arch, pad, architecture=""):
    # Three sequences, two of them padded; BERT's second segment has token type 1; Longformer's
    # rows have 2, 0 and 1 global tokens (a sequence classifier: its own, the first token).
    ids = torch.tensor([[2, 11, 12, 13, 14, 15, 16, 3], [2, 21, 22, 23, 3, pad, pad, pad],
                        [2, 31, 3, 41, 42, 3, pad, pad]])
    mask = (ids != pad).long()
    io = {"input_ids": ids, "attention_mask": mask}
    if arch == "bert":
        io["token_type_ids"] = torch.tensor([[0] * 8, [0] * 8, [0, 0, 0, 1, 1, 1, 0, 0]])
    if arch == "longformer" and not architecture.endswith("ForSequenceClassification"):
        io["global_attention_mask"] = torch.tensor([[1, 0, 0, 0, 0, 1, 0, 0], [0] * 8, [0, 0, 0, 1, 0, 0, 0, 0]])
    return io


def write(root):
    torch.manual_seed(1234)
    cases = [("bert", "BertForSequenceClassification", "gelu", torch.float32, 0),
             ("bert", "BertForMaskedLM", "gelu_new", torch.float32, 3),  # sharded into 3 files
             ("bert", "BertModel", "gelu", torch.float32, 0),
             ("distilbert", "DistilBertForSequenceClassification", "gelu", torch.float32, 0),
             ("distilbert", "DistilBertForMaskedLM", "relu", torch.bfloat16, 0),
             ("distilbert", "DistilBertModel", "gelu", torch.float32, 0),
             ("roberta", "RobertaForSequenceClassification", "gelu", torch.float16, 0),
             ("roberta", "RobertaForMaskedLM", "gelu", torch.float32, 0),
             ("roberta", "RobertaModel", "relu", torch.float32, 0)]
    # The classifiers again with classifier_pooling "mean".
    cases += [(arch, architecture, act, dtype, shards, True) for arch, architecture, act, dtype, shards in cases
              if architecture.endswith("ForSequenceClassification")]
    cases.append(("gpt2", "GPT2LMHeadModel", "gelu_new", torch.float32, 0))
    cases += [("bert", "BertForTokenClassification", "gelu", torch.float32, 0),
              ("distilbert", "DistilBertForTokenClassification", "gelu", torch.float16, 0),
              ("roberta", "RobertaForTokenClassification", "gelu", torch.float32, 0),
              ("bert", "BertForQuestionAnswering", "gelu_new", torch.float32, 0),
              ("distilbert", "DistilBertForQuestionAnswering", "gelu", torch.float32, 0),
              ("roberta", "RobertaForQuestionAnswering", "relu", torch.bfloat16, 0),
              ("bert", "BertForNextSentencePrediction", "gelu", torch.float32, 0),
              ("bert", "BertForQuestionAnswering", "gelu", torch.float32, 0, "relative_key"),
              ("roberta", "RobertaForMaskedLM", "gelu", torch.float32, 0, "relative_key_query"),
              ("longformer", "LongformerForSequenceClassification", "gelu", torch.float32, 0),
              ("longformer", "LongformerForMaskedLM", "gelu_new", torch.float16, 0),
              ("longformer", "LongformerModel", "relu", torch.float32, 0),
              ("longformer", "LongformerForTokenClassification", "gelu", torch.float32, 0)]
    for arch, architecture, act, dtype, shards, *more in cases:
        config = gpt2_config() if arch == "gpt2" else tiny_config(arch, architecture, act)
        mean = more == [True]
        relative = more[0] if more and isinstance(more[0], str) else None
        if mean:
            config["classifier_pooling"] = "mean"
        if relative:
            config["position_embedding_type"] = relative
        model, bare = build(config)
        model.eval()
        with torch.no_grad():  # random weights, every parameter non-trivial
            for _, p in model.named_parameters():
                p.copy_(torch.randn_like(p) * 0.3)
                p.copy_(p.to(dtype).float())  # what the stored dtype can represent
        d = os.path.join(root, "py-" + architecture + ("-mean" if mean else "") + ("-" + relative if relative else ""))
        os.makedirs(d, exist_ok=True)
        json.dump(config, open(os.path.join(d, "config.json"), "w"), indent=2)
        state = {k: v.to(dtype) for k, v in model.state_dict().items()}
        if shards:
            names = sorted(state)
            per = (len(names) + shards - 1) // shards
            weight_map = {}
            for i in range(shards):
                file = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
                part = {k: state[k] for k in names[i * per:(i + 1) * per]}
                write_safetensors(os.path.join(d, file), part)
                weight_map.update({k: file for k in part})
            json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map},
                      open(os.path.join(d, "model.safetensors.index.json"), "w"))
        else:
            write_safetensors(os.path.join(d, "model.safetensors"), state)
        io = inputs(arch, config.get("pad_token_id", 0), architecture)
        h, logits = run(model, bare, io)
        io["last_hidden_state"] = h
        if logits is not None:
            io["logits"] = logits
        if arch == "gpt2":
            write_generation(model, io)
        write_safetensors(os.path.join(d, "io.safetensors"), io)
        print(f"wrote {d} ({NAMES[dtype]})")
    return 0


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("check", "write"):
        print(__doc__, file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    return check(sys.argv[2]) if sys.argv[1] == "check" else write(sys.argv[2])


if __name__ == "__main__":
    sys.exit(main())
