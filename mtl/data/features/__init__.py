"""Features: from the validated raw log to model inputs.

The split (splits.py), the fitted, versioned feature transform (transform.py: what it holds and
how it loads; fit.py: learning it from the training split; encode.py: ``apply``, the one
function that turns raw rows into model inputs, for training and serving alike), the
preprocess driver that streams every split into memory-mapped shards (preprocess.py,
shards.py), and the sentence encoders of text columns (text.py).

The transform's public names are re-exported here (``from mtl.data import features``;
``features.fit``, ``features.apply``, ``features.Transform``).
"""

from mtl.data.features.encode import apply, encode_categorical, encode_sequence, encode_text, numeric_values
from mtl.data.features.fit import Fitter, fit, raw_profile
from mtl.data.features.transform import FORMAT_VERSION, OOV, Arrays, Transform, text_vectors_file

__all__ = ["FORMAT_VERSION", "OOV", "Arrays", "Fitter", "Transform", "apply", "encode_categorical",
           "encode_sequence", "encode_text", "fit", "numeric_values", "raw_profile", "text_vectors_file"]
