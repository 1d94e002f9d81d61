"""The arguments of the coding agent's four tools, as the model sees them (their JSON schema)
and as the offline model writes them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReadInput(_Input):
    """Read a text file. Long files come a slice at a time: use offset and limit to page."""

    path: str = Field(description="Path of the file, absolute or relative to the working directory")
    offset: int | None = Field(None, ge=1, description="First line to read, counting from 1")
    limit: int | None = Field(None, ge=1, description="How many lines to read")


class WriteInput(_Input):
    """Write a file, replacing it if it exists; missing parent directories are made."""

    path: str = Field(description="Path of the file, absolute or relative to the working directory")
    content: str = Field(description="The whole new content of the file")


class EditInput(_Input):
    """Replace one exact piece of a file's text. old_text must occur exactly once in the file."""

    path: str = Field(description="Path of the file, absolute or relative to the working directory")
    old_text: str = Field(description="The exact text to replace, unique in the file, whitespace included")
    new_text: str = Field(description="The text to put in its place")


class BashInput(_Input):
    """Run a bash command in the session's shell. The shell persists between calls (working
    directory, variables); host tools are commands here (`agentos list-tools`)."""

    command: str = Field(description="The bash command to run")
    timeout: float | None = Field(None, gt=0, description="Seconds before the command is stopped")


TOOL_INPUTS: dict[str, type[_Input]] = {
    "read": ReadInput,
    "write": WriteInput,
    "edit": EditInput,
    "bash": BashInput,
}
