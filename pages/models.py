"""Models (admin): providers (configured or not, base URL, concurrency, health check) and the model catalog."""
from __future__ import annotations

import json
from typing import Any

import streamlit as st

from core.budgets import usd
from core.errors import InvalidInput, StudioError
from core.models import CatalogModel, Capabilities
from ui import app, assist
from ui.widgets import field_error

app.require_frame()
s = app.studio()
MODALITIES = ["image", "chat", "video"]


def sync(key: str, value) -> None:
    """Show the stored value; write widget state only when it differs (a write re-sends the widget)."""
    if st.session_state.get(key) != value:
        st.session_state[key] = value


def set_active(model_id: str, key: str) -> None:
    active = bool(st.session_state.get(key))
    app.attempt_later(app.studio().models.set_active, model_id, active,
                      success="Model activated." if active else "Model deactivated.")


def save_concurrency(provider_id: str, key: str) -> None:
    app.attempt_later(app.studio().models.update_provider, provider_id,
                      {"concurrency_limit": int(st.session_state[key])}, success="Concurrency limit saved.")


def set_enabled(provider_id: str, key: str) -> None:
    app.attempt_later(app.studio().models.update_provider, provider_id,
                      {"is_enabled": bool(st.session_state[key])}, success="Provider updated.")


def check(provider_id: str) -> None:
    try:
        health = app.studio().models.health(provider_id)
        st.session_state.setdefault("m_health", {})[provider_id] = (health.state, health.message)
    except StudioError as exc:
        st.session_state.setdefault("m_health", {})[provider_id] = ("error", exc.message)
    except Exception as exc:  # noqa: BLE001 - a timeout or a provider bug is shown, not raised
        st.session_state.setdefault("m_health", {})[provider_id] = ("unreachable", f"{type(exc).__name__}: {exc}")


def open_editor(model_id: str | None) -> None:
    st.session_state["m_edit"] = model_id or "new"
    st.session_state.pop("m_errors", None)


def close_editor() -> None:
    st.session_state.pop("m_edit", None)
    st.session_state.pop("m_errors", None)


def parse_json(text: str, field: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise InvalidInput({field: f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"}) from None
    if not isinstance(value, dict):
        raise InvalidInput({field: "must be a JSON object, like {\"num_inference_steps\": 28}"})
    return value


def save_model(model_id: str | None) -> None:
    """Form callback: add or update a model; errors stay in the dialog next to their fields."""
    prefix = f"m.{model_id or 'new'}"
    get = st.session_state.get
    studio = app.studio()

    def save() -> None:
        capabilities = parse_json(get(f"{prefix}.caps"), "capabilities")
        capabilities["supports_i2i"] = bool(get(f"{prefix}.i2i"))
        capabilities["price_per_image"] = get(f"{prefix}.price")  # empty: None (no price)
        capabilities["price_per_megapixel"] = get(f"{prefix}.price_mp")
        data = {"display_name": get(f"{prefix}.name", ""), "modality": get(f"{prefix}.modality", "image"),
                "priority": int(get(f"{prefix}.priority") or 0), "capabilities": capabilities,
                "input_defaults": parse_json(get(f"{prefix}.defaults"), "input_defaults"),
                "notes": get(f"{prefix}.notes", ""), "is_active": bool(get(f"{prefix}.active"))}
        if model_id is None:
            studio.models.add(get(f"{prefix}.provider"), {**data, "model_key": get(f"{prefix}.key", "")})
        else:
            studio.models.update(model_id, data)

    if not app.save_with_errors("m_errors", save):
        return
    close_editor()
    app.flash("Model saved." if model_id else "Model added.")


@st.dialog("Model", width="large", on_dismiss=close_editor)
def editor_dialog(model: CatalogModel | None) -> None:
    if not st.session_state.get("m_edit"):
        st.rerun()  # saved: close the dialog
    errs = st.session_state.get("m_errors", {})
    providers = s.models.providers()
    prefix = f"m.{model.id if model else 'new'}"
    with st.form(f"{prefix}.form", border=False):
        if model is None:
            st.selectbox("Provider", [p.id for p in providers], key=f"{prefix}.provider",
                         format_func=lambda pid: next(p.display_name for p in providers if p.id == pid))
            st.text_input("Model key", key=f"{prefix}.key", placeholder="e.g. fal-ai/flux/dev")
            field_error(errs, "model_key")
        else:
            st.markdown(f"**{model.provider_id}** · `{model.model_key}`")
        st.text_input("Display name", value=model.display_name if model else "", key=f"{prefix}.name")
        field_error(errs, "display_name")
        c1, c2 = st.columns(2)
        c1.selectbox("Modality", MODALITIES, index=MODALITIES.index(model.modality) if model else 0,
                     key=f"{prefix}.modality")
        c2.number_input("Priority (higher is preferred)", value=model.priority if model else 0, step=1,
                        min_value=-10000, max_value=10000, key=f"{prefix}.priority")
        field_error(errs, "priority")
        caps = model.capabilities if model else Capabilities()
        c3, c4 = st.columns(2)
        c3.checkbox("Image-to-image (takes a reference image)", value=caps.supports_i2i, key=f"{prefix}.i2i")
        c4.checkbox("Active", value=model.is_active if model else True, key=f"{prefix}.active")
        c5, c6 = st.columns(2)
        c5.number_input("Price per image (USD)", value=caps.price_per_image, min_value=0.0, step=0.01, format="%.4f",
                        key=f"{prefix}.price", placeholder="no price",
                        help="Recorded as a job's cost where the provider reports none, and used for budgets.")
        c6.number_input("Price per megapixel (USD)", value=caps.price_per_megapixel, min_value=0.0, step=0.01,
                        format="%.4f", key=f"{prefix}.price_mp", placeholder="no price",
                        help="For providers that price by output size; the price per image wins where both are set.")
        field_error(errs, "capabilities.price_per_image")
        st.text_area("Capabilities (JSON)", value=json.dumps(caps.model_dump(), indent=2), key=f"{prefix}.caps",
                     height=160, help="Reference mapping, max references, resolution, aspect ratios, formats.")
        field_error(errs, "capabilities")
        st.text_area("Input defaults (JSON)", value=json.dumps(model.input_defaults if model else {}, indent=2),
                     key=f"{prefix}.defaults", height=120,
                     help="Sent with every request to this model, e.g. {\"num_inference_steps\": 28}")
        field_error(errs, "input_defaults")
        st.text_area("Notes", value=model.notes if model else "", key=f"{prefix}.notes")
        field_error(errs, "notes")
        field_error(errs, "_")
        st.form_submit_button("Save model" if model else "Add model", type="primary", on_click=save_model,
                              args=(model.id if model else None,))


def providers_section() -> None:
    st.subheader("Providers")
    health = st.session_state.get("m_health", {})
    for p in s.models.providers():
        with st.container(border=True):
            c = st.columns([2.4, 2.6, 1.4, 1.2, 1.1], vertical_alignment="center")
            badges = ":green-badge[configured]" if p.configured else ":gray-badge[not configured]"
            if p.preview:
                badges += " :blue-badge[preview]"
            if p.resumable:
                badges += " :violet-badge[resumable]"
            if p.text:
                badges += " :orange-badge[text model]" + (" :gray-badge[offline]" if p.offline else "")
            if not p.is_enabled:
                badges += " :orange-badge[disabled]"
            c[0].markdown(f"**{p.display_name}** `{p.id}`  \n{badges}")
            if p.key_env:
                key_text = ("key from " if p.configured else "set ") + " or ".join(f"`{e}`" for e in p.key_env)
            else:
                key_text = "needs no key"
            c[1].markdown(f":gray[{key_text}]  \n:gray[base URL:] `{p.base_url or 'built in'}`")
            ck = f"m.conc.{p.id}"
            sync(ck, p.concurrency_limit)
            c[2].number_input("Concurrency", min_value=1, max_value=256, step=1, key=ck,
                              on_change=save_concurrency, args=(p.id, ck), disabled=not s.actor.is_admin)
            ek = f"m.enabled.{p.id}"
            sync(ek, p.is_enabled)
            c[3].toggle("Enabled", key=ek, on_change=set_enabled, args=(p.id, ek), disabled=not s.actor.is_admin)
            c[4].button("Check", key=f"m.check.{p.id}", on_click=check, args=(p.id,), icon=":material/network_check:",
                        width="stretch")
            if p.id in health:
                state, message = health[p.id]
                if state == "ok":
                    st.success(f"{p.display_name}: {message or 'the key is accepted'}", icon=":material/check_circle:")
                elif state in ("not_configured", "unknown"):
                    st.info(f"{p.display_name}: {message}", icon=":material/info:")
                else:
                    st.error(f"{p.display_name} ({state}): {message}", icon=":material/error:")


def price_text(caps: Capabilities) -> str:
    """What a model costs, as budgets count it."""
    if caps.price_per_image is not None:
        return f"{usd(caps.price_per_image)} an image"
    if caps.price_per_megapixel is not None:
        return f"{usd(caps.price_per_megapixel)} a megapixel"
    return "no price (counts as free)"


def models_section() -> None:
    head, btn = st.columns([4, 1], vertical_alignment="center")
    head.subheader("Models")
    btn.button("Add model", icon=":material/add:", on_click=open_editor, args=(None,), width="stretch",
               disabled=not s.actor.is_admin)
    modality = st.segmented_control("Modality", ["image", "chat", "video", "all"], default="image", key="m_modality")
    models = s.models.list(modality=None if modality in (None, "all") else modality)
    if not models:
        st.caption("No models of this modality. Press **Add model** to add one.")
        return
    c = st.columns([2.6, 2.4, 1.6, 0.8, 1, 0.9])
    for col, label in zip(c, ["Model", "Key", "Capabilities, price", "Priority", "Active", ""]):
        if label:
            col.caption(f"**{label}**")
    for m in models:
        c = st.columns([2.6, 2.4, 1.6, 0.8, 1, 0.9], vertical_alignment="center")
        ready = "" if m.provider_configured else "  \n:gray[provider not configured]"
        if m.retired:
            ready += f"  \n:red-badge[retired by the provider] :gray[{(m.retired_reason or '')[:80]}]"
        c[0].markdown(f"**{m.display_name}**  \n:gray[{m.provider_id} · {m.modality}]{ready}")
        c[1].markdown(f"`{m.model_key}`" + (f"  \n:gray[{m.notes[:80]}]" if m.notes else ""))
        caps = []
        if m.supports_i2i:
            caps.append(":violet-badge[image-to-image]")
        if m.capabilities.supports_txt2img:
            caps.append(":gray-badge[text-to-image]")
        c[2].markdown(" ".join(caps) + f"  \n:gray[{price_text(m.capabilities)}]")
        c[3].markdown(str(m.priority))
        ak = f"m.active.{m.id}"
        sync(ak, m.is_active)
        c[4].toggle(f"{m.display_name} active", key=ak, on_change=set_active, args=(m.id, ak),
                    disabled=not s.actor.is_admin, label_visibility="collapsed")
        c[5].button("Edit", key=f"m.edit.{m.id}", on_click=open_editor, args=(m.id,), width="stretch",
                    disabled=not s.actor.is_admin)


def maintenance_section() -> None:
    maintenance = getattr(s, "maintenance", None)
    if maintenance is None or not s.actor.is_admin:
        return
    st.subheader("Storage cleanup")
    st.caption("Finds image files no portrait, scene or reference points to any more (and uploads never used). "
               "Files younger than the grace period are kept.")
    c1, c2, _ = st.columns([1, 1, 3])
    if c1.button("Find unused files", icon=":material/search:", key="gc_scan", width="stretch"):
        st.session_state["m_gc"] = app.attempt(maintenance.gc, apply=False)
    report = st.session_state.get("m_gc")
    deletable = len(report.deletable) + len(report.expired_uploads) if report is not None else 0
    if c2.button("Delete unused files", type="primary", icon=":material/delete_sweep:", key="gc_apply",
                 disabled=not deletable, width="stretch"):
        result = app.attempt(maintenance.gc, apply=True)
        if result is not None:
            st.session_state["m_gc"] = result
            report = result
    if report is not None:
        st.code(report.summary(), language=None, wrap_lines=True)


st.title("Models")
if not s.actor.is_admin:
    st.info("Only administrators can change providers and models; this is a read-only view.", icon=":material/lock:")
with app.guarded("the providers"):
    providers_section()
with app.guarded("the models"):
    models_section()
with app.guarded("the prompt templates"):
    assist.templates_admin(s)
with app.guarded("storage cleanup"):
    maintenance_section()
editing = st.session_state.get("m_edit")
if editing:
    model = None if editing == "new" else app.attempt(s.models.get, editing)
    if editing == "new" or model is not None:
        editor_dialog(model)
