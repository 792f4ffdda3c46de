"""GLM-4.7-Flash for AutoDeploy (adbot demo checkout: a placeholder with the real file's name, not its code)."""

try:
    from tensorrt_llm._torch.auto_deploy.models.hf import AutoModelForCausalLMFactory
except ImportError:  # outside a TensorRT-LLM install
    AutoModelForCausalLMFactory = None


class Glm4MoeLiteForCausalLM:
    """Placeholder: the demo checkout holds no model code."""

    def __init__(self, *args, **kwargs):
        raise NotImplementedError("adbot demo checkout: Glm4MoeLiteForCausalLM is a placeholder")


if AutoModelForCausalLMFactory is not None:
    AutoModelForCausalLMFactory.register_custom_model_cls("Glm4MoeLiteConfig", Glm4MoeLiteForCausalLM)
