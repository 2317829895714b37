"""Trainable candidate sources, added to a retriever with ``Retriever.add_model(name)``.

* :class:`EASESource` (``"ease"``): closed-form item-item linear autoencoder (Steck, 2019).
* :class:`SequentialSource` (``"sequential"``): SASRec-style causal self-attention over the
  user's recent items, full-softmax next-item training, item embeddings initialized from
  their text vectors so new items are scored from their text alone.

Each is a :class:`~llmrec.retrieval.TrainableSource`, the contract every trainable source
implements (third-party ones register under the ``llmrec.models`` entry-point group).
"""

from __future__ import annotations

from llmrec.retrieval.models.ease import EASESource
from llmrec.retrieval.models.sequential import SequentialSource

__all__ = ["EASESource", "SequentialSource"]
