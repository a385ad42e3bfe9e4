"""`inspection book add|list|remove`: the defect book, reference images per class (a scratch and each
look-alike) that inspectors open one key away on the review screen; thin over services.defect_book."""

from __future__ import annotations

from dataclasses import asdict

import typer

from inspection.cli.common import default_by, echo_json
from inspection.cli.context import in_pipeline
from inspection.core.domain import Role
from inspection.services import defect_book, errors, validation
from inspection.services.accounts import User

app = typer.Typer(no_args_is_help=True, help="The defect book: reference images per class for the inspectors.")

KNOWN = (errors.InputError, errors.NotFound)
CLASS_HELP = "one of " + ", ".join(defect_book.CLASSES)


def _engineer(by: str) -> User:
    # The command line runs with the database's own credentials, as every engineer command does
    # (`qc gold add --by`, `station set --by`): whoever runs it acts as an engineer named by --by.
    return User(name=validation.validate_name(default_by(by), "--by"), role=Role.ENGINEER)


def _line(e: defect_book.BookEntry) -> str:
    return (f"#{e.id} {e.defect_class}: item #{e.inspection_id} — {e.caption}  "
            f"({e.added_by} {e.created_at.isoformat()})")  # fmt: skip


@app.command("add")
def book_add(
    ctx: typer.Context,
    item: int = typer.Argument(..., help="the stored item (inspection id) to show as a reference"),
    defect_class: str = typer.Option(..., "--class", help=CLASS_HELP),
    caption: str = typer.Option(..., "--caption", help="what the inspector should see (3-300 characters)"),
    by: str = typer.Option("", "--by", help="who files it (default: your user name)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """File a stored item in the defect book under a class."""
    entry = in_pipeline(
        ctx,
        lambda p: defect_book.add_entry(p, user=_engineer(by), inspection_id=item, defect_class=defect_class,
                                        caption=caption),
        *KNOWN,
    )  # fmt: skip
    if as_json:
        echo_json(asdict(entry))
    else:
        typer.echo(f"added {_line(entry)}")


@app.command("list")
def book_list(
    ctx: typer.Context,
    defect_class: str | None = typer.Option(None, "--class", help=CLASS_HELP + " (default: all)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The book's entries, by class (scratch first, then its look-alikes)."""
    entries = in_pipeline(ctx, lambda p: defect_book.entries(p, defect_class=defect_class), *KNOWN)
    if as_json:
        echo_json([asdict(e) for e in entries])
        return
    if not entries:
        typer.echo("the defect book is empty" if defect_class is None else f"no {defect_class} entries")
    for e in entries:
        typer.echo(_line(e))


@app.command("remove")
def book_remove(
    ctx: typer.Context,
    entry: int = typer.Argument(..., help="the entry number (#N in `book list`)"),
    by: str = typer.Option("", "--by", help="who removes it (default: your user name)"),
) -> None:
    """Take an entry out of the book (the item itself stays stored)."""
    in_pipeline(ctx, lambda p: defect_book.remove_entry(p, user=_engineer(by), entry_id=entry), *KNOWN)
    typer.echo(f"removed entry #{entry} from the defect book")
