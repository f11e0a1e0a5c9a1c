"""The zoo's interaction layers: each maps a `[batch, fields, dim]` stack (or a DNN's input) to a tensor."""
from pfd_tf.models.zoo.layers.attention import InteractingLayer
from pfd_tf.models.zoo.layers.bilinear import BILINEAR_TYPES, BilinearInteraction
from pfd_tf.models.zoo.layers.cin import CIN
from pfd_tf.models.zoo.layers.dagfm import DAGFM_TYPES, DAGFMPropagation
from pfd_tf.models.zoo.layers.deep import DeepPart, deep_part
from pfd_tf.models.zoo.layers.fm import FMInteraction
from pfd_tf.models.zoo.layers.senet import SENET

__all__ = ["BILINEAR_TYPES", "BilinearInteraction", "CIN", "DAGFM_TYPES", "DAGFMPropagation", "DeepPart", "FMInteraction", "InteractingLayer", "SENET",
           "deep_part"]
