"""Generation at the training layer: the UniLM seq2seq and label-conditioned LM modules (`modules`), the
classifier judge of a conditioned LM (`judge`) and checkpoint → text loading for `attnlab generate` (`loader`).
The decoding algorithms themselves (greedy / sampling / beam, KV cache) are torch-only: `attnlab.model.generation`."""
