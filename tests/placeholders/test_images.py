"""Image placeholders: base64 text or upload markers, and filling markers with filenames."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from placeholders.errors import MissingUpload
from placeholders.graph import Site
from placeholders.images import (
    ImageMode,
    UploadRequest,
    choose_mode,
    fill_uploads,
    to_base64,
    upload_request,
    upload_requests,
)

PNG = b"\x89PNG\r\n\x1a\n fake"


def test_auto_uploads_for_load_image_and_its_mask_variant() -> None:
    assert choose_mode(ImageMode.AUTO, Site("1", "LoadImage", ("image",))) is ImageMode.UPLOAD
    assert choose_mode(ImageMode.AUTO, Site("1", "LoadImageMask", ("image",))) is ImageMode.UPLOAD


def test_auto_encodes_base64_for_every_other_input() -> None:
    base64_loader = Site("1", "ETN_LoadImageBase64", ("image",))
    other_input = Site("1", "LoadImage", ("upload",))
    assert choose_mode(ImageMode.AUTO, base64_loader) is ImageMode.BASE64
    assert choose_mode(ImageMode.AUTO, other_input) is ImageMode.BASE64


def test_an_explicit_mode_wins_over_the_node() -> None:
    site = Site("1", "LoadImage", ("image",))
    assert choose_mode(ImageMode.BASE64, site) is ImageMode.BASE64


def test_base64_is_plain_standard_encoding_without_line_breaks() -> None:
    data = bytes(range(256)) * 20
    text = to_base64(data)
    assert "\n" not in text
    assert base64.b64decode(text) == data


def test_an_upload_request_is_named_by_placeholder_and_content() -> None:
    marker = upload_request("char_avatar", PNG)
    assert marker.placeholder == "char_avatar"
    assert marker.data == PNG
    assert marker.filename_hint.startswith("char_avatar-")
    assert marker.filename_hint.endswith(".png")
    assert upload_request("char_avatar", PNG) == marker
    assert upload_request("char_avatar", PNG + b"!").filename_hint != marker.filename_hint


def test_an_upload_requests_repr_leaves_out_the_image_bytes() -> None:
    assert "fake" not in repr(upload_request("char_avatar", PNG))


def graph_with_markers() -> dict[str, Any]:
    char = upload_request("char_avatar", PNG)
    user = upload_request("user_avatar", b"user")
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": char}},
        "2": {"class_type": "LoadImage", "inputs": {"image": user, "other": ["1", 0]}},
        "3": {"class_type": "LoadImage", "inputs": {"image": char}},
    }


def test_upload_requests_lists_each_distinct_marker_once_in_graph_order() -> None:
    markers = upload_requests(graph_with_markers())
    assert [marker.placeholder for marker in markers] == ["char_avatar", "user_avatar"]
    assert all(isinstance(marker, UploadRequest) for marker in markers)


def test_fill_uploads_replaces_markers_with_server_filenames_in_a_new_graph() -> None:
    graph = graph_with_markers()
    filled = fill_uploads(graph, {"char_avatar": "a.png", "user_avatar": "sub/b.png"})
    assert filled["1"]["inputs"]["image"] == "a.png"
    assert filled["2"]["inputs"] == {"image": "sub/b.png", "other": ["1", 0]}
    assert filled["3"]["inputs"]["image"] == "a.png"
    assert isinstance(graph["1"]["inputs"]["image"], UploadRequest)
    assert upload_requests(filled) == ()


def test_fill_uploads_refuses_to_leave_a_marker_behind() -> None:
    with pytest.raises(MissingUpload) as caught:
        fill_uploads(graph_with_markers(), {"char_avatar": "a.png"})
    assert caught.value.placeholder == "user_avatar"
    assert caught.value.given == ("char_avatar",)
