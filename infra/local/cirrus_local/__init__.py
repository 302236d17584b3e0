"""The local stack: Cirrus on one machine with no AWS account and no Docker.

moto plays AWS (DynamoDB, S3, SNS), a Lambda-invoke stand-in runs ModelFunction's handler,
and the API app runs under uvicorn. The code under test reaches all of it through boto3
exactly as in AWS; only the AWS_ENDPOINT_URL* variables differ.
"""
