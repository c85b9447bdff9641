"""Views of a Plan (text, markdown, JSON) and of apply progress. Rendering only: no decisions are made here."""
