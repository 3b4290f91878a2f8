"""Dictionaries (sparse autoencoders) of a model's layers: train, store, load, measure, splice.

A dictionary is a change of basis of one layer's activations (``Dictionary``,
stored in SAELens's layout inside the model's zoo folder). The analyses that
use one live beside the others: ``analysis.latents`` (latents as units),
``analysis.splicing`` (the spliced model and the logits in latents),
``analysis.dictionary_quality`` (the metrics on its card).

    from mechmnistic.dictionaries import SparseAutoencoder, train_dictionary, save_dictionary, load_dictionary
    sae = SparseAutoencoder(kind="topk", n_latents=512, k=16, random_state=0)
    dictionary = train_dictionary(model, "layers.0", sae)       # card with metrics; nothing written
    save_dictionary(dictionary)                                 # models/mlp-1x64/dictionaries/layers.0-topk512/
    dictionary = load_dictionary(model, "layers.0-topk512")     # refused on other weights
"""

from .dictionary import (
    CARD_FILE,
    CFG_FILE,
    KINDS,
    MAX_LATENTS,
    WEIGHTS_FILE,
    Dictionary,
    DictionaryCard,
    DictionaryError,
    DictionaryExistsError,
    DictionaryMismatchError,
    DictionaryNotFoundError,
    dictionary_dir,
    dictionary_summaries,
    list_dictionaries,
    load_dictionary,
    read_card,
    read_dictionary,
    save_dictionary,
    validate_dictionary_id,
)
from .training import SparseAutoencoder, default_dictionary_id, train_dictionary, training_rows

__all__ = [
    "CARD_FILE", "CFG_FILE", "KINDS", "MAX_LATENTS", "WEIGHTS_FILE", "Dictionary", "DictionaryCard",
    "DictionaryError", "DictionaryExistsError", "DictionaryMismatchError", "DictionaryNotFoundError",
    "dictionary_dir", "dictionary_summaries", "list_dictionaries", "load_dictionary", "read_card",
    "read_dictionary", "save_dictionary", "validate_dictionary_id", "SparseAutoencoder", "default_dictionary_id",
    "train_dictionary", "training_rows",
]
