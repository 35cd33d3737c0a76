"""The AWS CDK app: one Lambda function and one EventBridge rule per registry job."""
