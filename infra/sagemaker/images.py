"""Container images for the SageMaker GPU endpoint, by region.

template.yaml's `DlcRegistry` mapping is generated from DLC_ACCOUNTS below (tests/iac keeps
the two equal). The accounts are those AWS Deep Learning Containers publish from, as listed in
the SageMaker Python SDK's `image_uri_config/huggingface-llm.json`; most commercial regions use
763104351884, a few newer or opt-in regions have their own account.

Run it to print a URI, e.g. for `sam deploy --parameter-overrides SageMakerImageUri=...`::

    python infra/sagemaker/images.py eu-west-1            # HF TGI (default tag)
    python infra/sagemaker/images.py eu-west-1 --lmi      # LMI (DJL serving, vLLM/TRT-LLM)
"""

from __future__ import annotations

import argparse

# Hugging Face LLM inference container (text-generation-inference). Its Messages API
# (MESSAGES_API_ENABLED=true) takes OpenAI chat requests on /invocations.
TGI_REPOSITORY = "huggingface-pytorch-tgi-inference"
TGI_DEFAULT_TAG = "2.6.0-tgi3.2.3-gpu-py311-cu124-ubuntu22.04"

# Large Model Inference container (DJL Serving with vLLM / TensorRT-LLM / LMI-dist). It also
# accepts the OpenAI chat schema. Pick a current tag from the DLC release notes before use.
LMI_REPOSITORY = "djl-inference"
LMI_DEFAULT_TAG = "0.35.0-lmi17.0.0-cu128"  # LMI (vLLM) release of 2025-09-30

DLC_ACCOUNTS: dict[str, str] = {
    "us-east-1": "763104351884",
    "us-east-2": "763104351884",
    "us-west-1": "763104351884",
    "us-west-2": "763104351884",
    "ca-central-1": "763104351884",
    "sa-east-1": "763104351884",
    "eu-central-1": "763104351884",
    "eu-north-1": "763104351884",
    "eu-west-1": "763104351884",
    "eu-west-2": "763104351884",
    "eu-west-3": "763104351884",
    "eu-south-1": "692866216735",
    "ap-northeast-1": "763104351884",
    "ap-northeast-2": "763104351884",
    "ap-northeast-3": "364406365360",
    "ap-south-1": "763104351884",
    "ap-southeast-1": "763104351884",
    "ap-southeast-2": "763104351884",
    "ap-east-1": "871362719292",
    "me-south-1": "217643126080",
    "af-south-1": "626614931356",
}

# GPU instance types the template allows, with what fits on them (fp16/bf16 weights plus
# KV cache; quantised models fit larger). Prices live in docs/deploy.md.
INSTANCE_TYPES: dict[str, str] = {
    "ml.g4dn.xlarge": "1x T4 16 GB - up to ~3B in fp16; the cheapest GPU",
    "ml.g5.xlarge": "1x A10G 24 GB - up to ~7B parameters",
    "ml.g5.2xlarge": "1x A10G 24 GB, more CPU/RAM - up to ~7B",
    "ml.g5.12xlarge": "4x A10G 96 GB - up to ~34B (SM_NUM_GPUS=4)",
    "ml.g6.xlarge": "1x L4 24 GB - up to ~7B, cheaper than g5",
    "ml.g6.2xlarge": "1x L4 24 GB, more CPU/RAM - up to ~7B",
    "ml.g6.12xlarge": "4x L4 96 GB - up to ~34B (SM_NUM_GPUS=4)",
    "ml.g6e.xlarge": "1x L40S 48 GB - up to ~14B",
    "ml.g6e.2xlarge": "1x L40S 48 GB, more CPU/RAM - up to ~14B",
    "ml.p4d.24xlarge": "8x A100 40 GB - 70B class (SM_NUM_GPUS=8)",
}

# Environment for the TGI container; template.yaml sets the same names on SageMakerModel.
TGI_ENV_NAMES = (
    "HF_MODEL_ID",  # hub id, or /opt/ml/model when weights come from S3 (ModelDataSource)
    "SM_NUM_GPUS",  # tensor-parallel degree: the GPUs on the instance
    "MESSAGES_API_ENABLED",  # "true": OpenAI messages schema on /invocations
    "MAX_INPUT_TOKENS",
    "MAX_TOTAL_TOKENS",
)


def image_uri(region: str, *, lmi: bool = False, tag: str | None = None) -> str:
    """The ECR URI of the TGI (default) or LMI image for `region`."""
    try:
        account = DLC_ACCOUNTS[region]
    except KeyError:
        raise ValueError(
            f"no Deep Learning Containers account known for {region!r}; "
            "pass SageMakerImageUri explicitly"
        ) from None
    repository = LMI_REPOSITORY if lmi else TGI_REPOSITORY
    chosen = tag or (LMI_DEFAULT_TAG if lmi else TGI_DEFAULT_TAG)
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{suffix}/{repository}:{chosen}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("region")
    parser.add_argument("--lmi", action="store_true", help="the LMI image instead of TGI")
    parser.add_argument("--tag", help="override the image tag")
    args = parser.parse_args(argv)
    print(image_uri(args.region, lmi=args.lmi, tag=args.tag))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
