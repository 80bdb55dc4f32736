#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Validates turtlefinder's JSON output against a JSON Schema.

usage: validate-json.py SCHEMA [FILE...]

Each FILE (standard input when none, or "-") holds one JSON document or
JSON lines (one document per line, as `--watch --json` prints). Every
document must validate; input without any document is an error too, so an
empty output never passes. Exit status: 0 all valid, 1 some invalid (each
error named on stderr by file, line and place in the document), 2 bad usage
or an unusable schema.
"""
import json
import sys

try:
    import jsonschema
except ImportError:
    print("validate-json: python3-jsonschema is not installed (tools/setup.sh test installs it)", file=sys.stderr)
    sys.exit(2)


def documents(name, text):
    """(line number, document) for the whole text as one document, else for each non-blank line."""
    try:
        return [(1, json.loads(text))] if text.strip() else []
    except json.JSONDecodeError:
        pass
    docs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            docs.append((number, json.loads(line)))
        except json.JSONDecodeError as e:
            raise ValueError(f"{name}:{number}: not JSON: {e}") from None
    return docs


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as f:
            schema = json.load(f)
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
    except (OSError, ValueError, jsonschema.SchemaError) as e:
        print(f"validate-json: {argv[1]}: unusable schema: {e}", file=sys.stderr)
        return 2
    validator = cls(schema)
    failed = False
    for name in argv[2:] or ["-"]:
        try:
            if name == "-":
                name, text = "<stdin>", sys.stdin.read()
            else:
                with open(name, encoding="utf-8") as f:
                    text = f.read()
            docs = documents(name, text)
        except (OSError, ValueError) as e:
            print(f"validate-json: {e}", file=sys.stderr)
            failed = True
            continue
        if not docs:
            print(f"validate-json: {name}: no JSON document", file=sys.stderr)
            failed = True
        for number, doc in docs:
            # best_match picks the error of the oneOf branch the document meant.
            error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
            if error is not None:
                where = "/".join(str(p) for p in error.absolute_path) or "(top)"
                print(f"validate-json: {name}:{number}: at {where}: {error.message}", file=sys.stderr)
                failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
