"""`studio assist suggest NAME FIELD`: a suggestion for one field, streamed to the terminal."""
from __future__ import annotations

import json
import sys

from core.assist.models import SUGGEST_FIELDS


def suggest(studio, args) -> None:
    character = studio.characters.resolve(args.character)
    stream = studio.assist.stream(character.id, args.field, model=args.model)
    if args.json:
        suggestion = stream.result()
    else:
        for piece in stream:
            sys.stdout.write(piece)
            sys.stdout.flush()
        suggestion = stream.suggestion
        print()
    if args.save:
        studio.characters.update(character.id, suggestion.values)
    if args.json:
        print(json.dumps({**suggestion.model_dump(mode="json"), "saved": bool(args.save)}, indent=2))
    else:
        label = "offline suggester" if suggestion.offline else suggestion.model_name
        print(f"({label}; {'saved' if args.save else 'not saved: add --save to store it'})", file=sys.stderr)


def register_cli(sub, command) -> None:
    assist = sub.add_parser("assist", help="AI assist: suggestions for a character's fields").add_subparsers(
        dest="action", required=True)
    p = command(assist, "suggest", suggest, "suggest one field of a character from the rest of it", runner=True)
    p.add_argument("character", help="id or name")
    p.add_argument("field", help=f"one of {', '.join(SUGGEST_FIELDS)}")
    p.add_argument("--model", help="text model id or key (default: the highest-priority active one)")
    p.add_argument("--save", action="store_true", help="store the suggestion (tags are added to the character's own)")
