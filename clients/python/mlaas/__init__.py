"""mlaas — the Python client of an mlaas server (standard library only).

    from mlaas import Client
    client = Client("http://127.0.0.1:8080", token="mlaas_...")   # or $MLAAS_SERVER, $MLAAS_TOKEN
    client.objects.upload("reviews.csv", "data/reviews.csv")
    task = client.train(dataset="data/reviews.csv", save="models/sentiment", objective="text-classification",
                        preset="bert-tiny", tokenizer="tok/vocab.txt", epochs=3, register="sentiment", alias="champion")
    result = task.wait(progress=True)
    client.predict("catalog://sentiment@champion", ["what a great movie"])["predictions"]

Every error the server answers raises ApiError (status, code, field, request_id). See
docs/python.md.
"""
from ._client import Catalog, Client, Deployments, Objects, Task, TaskFailed, Tasks, Tokens, VectorStores
from ._http import ApiError

__version__ = "0.1.0"
__all__ = ["Client", "ApiError", "Task", "TaskFailed", "Objects", "Catalog", "Deployments", "Tasks", "Tokens", "VectorStores"]
