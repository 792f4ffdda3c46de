# AutoDeploy custom models (adbot demo checkout: a stand-in for TensorRT-LLM's file).
from .modeling_glm4_moe_lite import Glm4MoeLiteForCausalLM

__all__ = ("Glm4MoeLiteForCausalLM",)
