"""The `cadence` command line: campaigns in a deployed (or local) stack, found through its CloudFormation Outputs."""
