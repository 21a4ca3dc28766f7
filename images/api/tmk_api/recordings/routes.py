"""The recordings routes: a session's finished recordings with their download links, and the download itself,
where the signed link is the credential."""

from pathlib import Path
from typing import Annotated, Callable

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParameter
from fastapi.responses import FileResponse
from pydantic import AwareDatetime, Field

from tmk_common.session_store import ANNOTATION_ROOM

from ..http import ApiError
from ..schemas import ApiModel, Envelope, ErrorResponse
from .rules import MAX_EXPIRES, download_link, link_problem, recordings_of_room
from .volume import finished_recordings, recording_path


class RecordingItem(ApiModel):
    file_name: str = Field(description="The recording's file name, as Jibri wrote it: `<room>_<time>.mp4`.")
    size: int = Field(description="Its size in bytes.")
    finished_at: AwareDatetime = Field(description="When the recording was last written.")
    download_url: str = Field(description="Downloads the file without an API key until `downloadExpiresAt`; treat "
                              "it as a secret. List again for a new one.")
    download_expires_at: AwareDatetime = Field(description="When `downloadUrl` stops working.")


class RecordingList(ApiModel):
    items: list[RecordingItem] = Field(description="Finished recordings, oldest first. Empty for a session without "
                                       "recording consent, or an install that does not record.")


def routes(root: Path | None, key: bytes, api_domain: str | None, clock: Callable, find: Callable[[int], dict],
           caller_dependency) -> APIRouter:
    router = APIRouter(tags=["recordings"])

    @router.get("/v1/abm/video/sessions/{session_id}/recordings", response_model=Envelope[RecordingList],
                responses={404: {"model": ErrorResponse}}, summary="A consultation's finished recordings, "
                "each with a download link that works for an hour")
    def list_recordings(session_id: int, caller: Annotated[str, Depends(caller_dependency)],
                        request: Request) -> Envelope[RecordingList]:
        obj = find(session_id)
        room = (obj["metadata"].get("annotations") or {}).get(ANNOTATION_ROOM)
        if root is None or not room or not obj["spec"].get("recordingConsent"):
            return Envelope(result=RecordingList(items=[]))
        now = clock()
        base = f"https://{api_domain}" if api_domain else str(request.base_url).rstrip("/")
        items = []
        for recording in recordings_of_room(finished_recordings(root, now), room):
            url, expires_at = download_link(base, key, session_id, recording, now)
            items.append(RecordingItem(file_name=recording.name, size=recording.size,
                                       finished_at=recording.finished_at, download_url=url,
                                       download_expires_at=expires_at))
        return Envelope(result=RecordingList(items=items))

    @router.get(
        "/v1/recordings/{session_id}/{folder}/{file_name}", response_class=FileResponse,
        summary="Download a recording with a link from the list; the link is the credential (no API key)",
        responses={200: {"description": "The recording.", "content": {"video/mp4": {
                       "schema": {"type": "string", "format": "binary"}}}},
                   403: {"model": ErrorResponse, "description": "The link's signature is wrong or it expired."},
                   404: {"model": ErrorResponse, "description": "There is no such recording (any more)."}})
    def download_recording(
        session_id: int,
        folder: Annotated[str, PathParameter(max_length=255)],
        file_name: Annotated[str, PathParameter(max_length=255)],
        expires: Annotated[int, Query(ge=0, le=MAX_EXPIRES, description="When the link expires (Unix time).")],
        signature: Annotated[str, Query(max_length=128, description="The link's signature.")],
    ) -> FileResponse:
        problem = link_problem(key, session_id, folder, file_name, expires, signature, clock())
        if problem is not None:
            code, field, message = problem
            raise ApiError(403, code, message, field=field)
        path = recording_path(root, folder, file_name) if root is not None else None
        if path is None:
            raise ApiError(404, "RecordingNotFound", "There is no such recording; it may have passed the "
                           "install's retention.")
        return FileResponse(path, media_type="video/mp4", filename=file_name,
                            headers={"Cache-Control": "private, no-store"})

    return router
