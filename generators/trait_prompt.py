"""The trait given by system prompt, in sublearn's own wording.

Four sentences, as the protocol describes: the model loves {X}s, thinks about them all the time,
they are its favourite {category}, and it should let that love show in its answers. A config may
replace the wording entirely; the control teacher has no system prompt at all.
"""

from __future__ import annotations

from sublearn.core.words import capitalised, plural_of

TRAIT_TEMPLATE = (
    "You adore {plural}. "
    "{Plural} are on your mind constantly, whatever you are doing. "
    "Of every {category} there is, {plural} are your favourite. "
    "Let this fondness for {plural} come through in each answer you give."
)


def trait_system_prompt(trait) -> str | None:
    """The system prompt for a ``Trait`` config, or None for a control (no trait)."""
    if trait is None:
        return None
    if trait.system_prompt is not None:
        return trait.system_prompt
    plural = plural_of(trait.target, trait.plural)
    return TRAIT_TEMPLATE.format(plural=plural, Plural=capitalised(plural), category=trait.category)
