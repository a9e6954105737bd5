"""Languages of the worldwide (MetaCLIP 2) recipe: Wikipedia codes, the metadata languages they
merge into, the language-ID labels that map onto them, and which languages write no spaces.

MetaCLIP 2 builds one metadata list per Wikipedia (metaclip/metadata/build_metadata.py's 330
codes), then merges the lists whose code has a variant suffix into the code before the '_'
(align_lid_to_wiki.py: zh_classical, zh_yue and zh_min_nan into zh, be_tarask into be, nds_nl
into nds), and keeps a merged list only when some language-ID label maps onto it.

The reference leaves its LID-to-Wikipedia table (`lid_to_wiki`) for users to fill in. Ours is
for fastText's lid.176, the model this project bundles: every one of its 176 labels is a
Wikipedia code of its own, except
- `yue` (Cantonese), whose Wikipedia is zh_yue: merged into zh, as MetaCLIP 2 merges zh_yue;
- `cbk` (Chavacano), whose Wikipedia is cbk_zam: the metadata language cbk;
- `lrc` (Northern Luri), which has no Wikipedia in the list: no metadata, counted as `other`.
Simple English (`simple`) and the variants whose prefix is no LID label (bat_smg, fiu_vro,
map_bms, roa_rup, roa_tara) have no metadata language, as in the reference.
"""

from __future__ import annotations

OTHER = "other"  # the language of a text whose language has no metadata

# metaclip/metadata/build_metadata.py's wiki_lang_code (MetaCLIP 2), in its order.
WIKI_CODES: tuple[str, ...] = tuple(
    """
    ab ace ady af als alt am ami an ang anp ar arc ary arz as ast atj av avk awa ay az azb ba
    ban bar bat_smg bbc bcl be be_tarask bew bg bh bi bjn blk bm bn bo bpy br bs bug bxr ca
    cbk_zam cdo ce ceb ch chr chy ckb co cr crh cs csb cu cv cy da dag de dga din diq dsb dtp
    dty dv dz ee el eml en eo es et eu ext fa fat ff fi fiu_vro fj fo fon fr frp frr fur fy ga
    gag gan gcr gd gl glk gn gom gor got gpe gu guc gur guw gv ha hak haw he hi hif hr hsb ht hu
    hy hyw ia id ie ig igl ik ilo inh io is it iu ja jam jbo jv ka kaa kab kbd kbp kcg kg ki kk
    kl km kn ko koi krc ks ksh ku kus kv kw ky la lad lb lbe lez lfn lg li lij lld lmo ln lo lt
    ltg lv mad mai map_bms mdf mg mhr mi min mk ml mn mni mnw mr mrj ms mt mwl my myv mzn nah nap
    nds nds_nl ne new nia nl nn no nov nqo nrm nso nv ny oc olo om or os pa pag pam pap pcd pcm
    pdc pfl pi pih pl pms pnb pnt ps pt pwn qu rm rmy rn ro roa_rup roa_tara ru rue rw sa sah
    sat sc scn sco sd se sg sh shi shn si simple sk skr sl sm smn sn so sq sr srn ss st stq su
    sv sw szl szy ta tay tcy te tet tg th ti tk tl tly tn to tpi tr trv ts tt tum tw ty tyv udm
    ug uk ur uz ve vec vep vi vls vo wa war wo wuu xal xh xmf yi yo za zea zgh zh zh_classical
    zh_min_nan zh_yue zu
    """.split()  # noqa: SIM905 (a readable block of codes)
)

# fastText lid.176's labels (read from the model file), in code order.
LID_176_LABELS: tuple[str, ...] = tuple(
    """
    af als am an ar arz as ast av az azb ba bar bcl be bg bh bn bo bpy br bs bxr ca cbk ce ceb
    ckb co cs cv cy da de diq dsb dty dv el eml en eo es et eu fa fi fr frr fy ga gd gl gn gom
    gu gv he hi hif hr hsb ht hu hy ia id ie ilo io is it ja jbo jv ka kk km kn ko krc ku kv kw
    ky la lb lez li lmo lo lrc lt lv mai mg mhr min mk ml mn mr mrj ms mt mwl my myv mzn nah nap
    nds ne new nl nn no oc or os pa pam pfl pl pms pnb ps pt qu rm ro ru rue sa sah sc scn sco
    sd sh si sk sl so sq sr su sv sw ta te tg th tk tl tr tt tyv ug uk ur uz vec vep vi vls vo
    wa war wuu xal xmf yi yo yue zh
    """.split()  # noqa: SIM905 (a readable block of codes)
)

# Labels that are not a Wikipedia code of their own (see the module docstring); None: no wiki.
_LID_EXCEPTIONS: dict[str, str | None] = {"yue": "zh", "cbk": "cbk", "lrc": None}

# lid.176 label -> metadata language.
LID_TO_METADATA: dict[str, str] = {
    label: _LID_EXCEPTIONS.get(label, label)
    for label in LID_176_LABELS
    if _LID_EXCEPTIONS.get(label, label) is not None
}

METADATA_LANGUAGES: frozenset[str] = frozenset(LID_TO_METADATA.values())

# Languages written without spaces between words (MetaCLIP 2's no_space_languages): their
# n-grams come from a segmenter and their bigrams are concatenated without a space.
NO_SPACE_LANGUAGES: frozenset[str] = frozenset(
    {"bo", "dz", "ja", "km", "lo", "my", "ryu", "th", "zh", "zh_classical", "zh_yue"}
)

# Open Multilingual Wordnet language codes -> Wikipedia codes (MetaCLIP 2's wordnet_to_wiki).
WORDNET_TO_WIKI: dict[str, str] = {
    "fin": "fi", "heb": "he", "slv": "sl", "ita": "it", "nno": "nn", "nob": "no",
    "als": "als", "pol": "pl", "hrv": "hr", "nld": "nl", "ron": "ro", "arb": "ar",
    "isl": "is", "swe": "sv", "por": "pt", "cmn": "zh", "jpn": "ja", "dan": "da",
    "slk": "sk", "lit": "lt", "bul": "bg", "eus": "eu", "cat": "ca", "glg": "gl",
    "spa": "es", "ell": "el", "zsm": "ms", "ind": "id", "fra": "fr", "tha": "th",
}  # fmt: skip
WIKI_TO_WORDNET: dict[str, str] = {wiki: omw for omw, wiki in WORDNET_TO_WIKI.items()}


def merged_language(wiki_code: str) -> str | None:
    """The metadata language a Wikipedia's list goes into (None: no metadata language)."""
    key = wiki_code.split("_")[0] if "_" in wiki_code else wiki_code
    return key if key in METADATA_LANGUAGES else None


def wikis_of(language: str) -> list[str]:
    """The Wikipedia codes whose lists make up a metadata language (its own code first)."""
    return sorted((w for w in WIKI_CODES if merged_language(w) == language), key=lambda w: (
        w != language, w))  # fmt: skip


def metadata_language(lid_label: str | None, available: frozenset[str] | set[str]) -> str:
    """The metadata language of a text identified as `lid_label`, or OTHER when that language
    has no metadata in `available` (or the text got no label)."""
    if not lid_label:
        return OTHER
    language = LID_TO_METADATA.get(lid_label)
    return language if language in available else OTHER


def is_no_space(language: str) -> bool:
    return language in NO_SPACE_LANGUAGES
