"""What a reader says it can do: GET_READER_CAPABILITIES_RESPONSE's parameters (spec 16.2.3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from drivers.llrp_frames.wire import Field, Flags, Parameter, Rest, Sub, Wire, register


@register
@dataclass(frozen=True, slots=True)
class ReceiveSensitivityTableEntry(Parameter):
    index: int
    value: int  # dB, s16
    TYPE: ClassVar[int] = 139
    WIRE: ClassVar[Wire] = (
        Field("index", "u16", "Index"),
        Field("value", "s16", "ReceiveSensitivityValue"),
    )


@register
@dataclass(frozen=True, slots=True)
class PerAntennaAirProtocol(Parameter):
    antenna_id: int
    protocols: tuple[int, ...] = (1,)  # 1 = EPCGlobal Class 1 Gen 2
    TYPE: ClassVar[int] = 140
    WIRE: ClassVar[Wire] = (
        Field("antenna_id", "u16", "AntennaID"),
        Field("protocols", "u8v", "ProtocolID"),
    )


@register
@dataclass(frozen=True, slots=True)
class GPIOCapabilities(Parameter):
    num_gpis: int = 0
    num_gpos: int = 0
    TYPE: ClassVar[int] = 141
    WIRE: ClassVar[Wire] = (
        Field("num_gpis", "u16", "NumGPIs"),
        Field("num_gpos", "u16", "NumGPOs"),
    )


@register
@dataclass(frozen=True, slots=True)
class GeneralDeviceCapabilities(Parameter):
    max_antennas: int
    firmware: str
    manufacturer: int = 0  # IANA private enterprise number
    model: int = 0
    can_set_antenna_properties: bool = False
    has_utc_clock: bool = True
    sensitivity: tuple[ReceiveSensitivityTableEntry, ...] = (ReceiveSensitivityTableEntry(1, 0),)
    gpio: GPIOCapabilities = GPIOCapabilities()
    air_protocols: tuple[PerAntennaAirProtocol, ...] = ()
    other: tuple[Parameter, ...] = ()
    TYPE: ClassVar[int] = 137
    WIRE: ClassVar[Wire] = (
        Field("max_antennas", "u16", "MaxNumberOfAntennaSupported"),
        Flags("flags", "u16", (("can_set_antenna_properties", 15), ("has_utc_clock", 14))),
        Field("manufacturer", "u32", "DeviceManufacturerName"),
        Field("model", "u32", "ModelName"),
        Field("firmware", "utf8v", "ReaderFirmwareVersion"),
        Sub("sensitivity", ReceiveSensitivityTableEntry, "many"),
        Sub("gpio", GPIOCapabilities, "req"),
        Sub("air_protocols", PerAntennaAirProtocol, "many"),
        Rest(),
    )


@register
@dataclass(frozen=True, slots=True)
class LLRPCapabilities(Parameter):
    can_do_rf_survey: bool = False
    can_report_buffer_fill_warning: bool = False
    supports_client_request_opspec: bool = False
    can_do_state_aware_singulation: bool = False
    supports_event_and_report_holding: bool = False
    max_priority_levels: int = 1
    client_request_opspec_timeout: int = 0
    max_rospecs: int = 1
    max_specs_per_rospec: int = 1
    max_inventory_parameter_specs_per_aispec: int = 1
    max_access_specs: int = 0
    max_opspecs_per_access_spec: int = 0
    TYPE: ClassVar[int] = 142
    WIRE: ClassVar[Wire] = (
        Flags(
            "flags",
            "u8",
            (
                ("can_do_rf_survey", 7),
                ("can_report_buffer_fill_warning", 6),
                ("supports_client_request_opspec", 5),
                ("can_do_state_aware_singulation", 4),
                ("supports_event_and_report_holding", 3),
            ),
        ),
        Field("max_priority_levels", "u8", "MaxNumPriorityLevelsSupported"),
        Field("client_request_opspec_timeout", "u16", "ClientRequestOpSpecTimeout"),
        Field("max_rospecs", "u32", "MaxNumROSpecs"),
        Field("max_specs_per_rospec", "u32", "MaxNumSpecsPerROSpec"),
        Field(
            "max_inventory_parameter_specs_per_aispec",
            "u32",
            "MaxNumInventoryParameterSpecsPerAISpec",
        ),
        Field("max_access_specs", "u32", "MaxNumAccessSpecs"),
        Field("max_opspecs_per_access_spec", "u32", "MaxNumOpSpecsPerAccessSpec"),
    )


@register
@dataclass(frozen=True, slots=True)
class TransmitPowerLevelTableEntry(Parameter):
    index: int
    value: int  # dBm × 100, s16
    TYPE: ClassVar[int] = 145
    WIRE: ClassVar[Wire] = (
        Field("index", "u16", "Index"),
        Field("value", "s16", "TransmitPowerValue"),
    )


@register
@dataclass(frozen=True, slots=True)
class FrequencyHopTable(Parameter):
    hop_table_id: int
    frequencies_khz: tuple[int, ...]
    TYPE: ClassVar[int] = 147
    WIRE: ClassVar[Wire] = (
        Field("hop_table_id", "u8", "HopTableID"),
        Field(None, "u8", "Reserved"),
        Field("frequencies_khz", "u32v", "Frequency"),
    )


@register
@dataclass(frozen=True, slots=True)
class FrequencyInformation(Parameter):
    hopping: bool
    hop_tables: tuple[FrequencyHopTable, ...] = ()
    other: tuple[Parameter, ...] = ()  # FixedFrequencyTable kept raw
    TYPE: ClassVar[int] = 146
    WIRE: ClassVar[Wire] = (
        Flags("Hopping", "u8", (("hopping", 7),)),
        Sub("hop_tables", FrequencyHopTable, "many"),
        Rest(),
    )


@register
@dataclass(frozen=True, slots=True)
class UHFC1G2RFModeTableEntry(Parameter):
    mode_id: int
    dr: int = 1  # 0 = 8, 1 = 64/3
    epc_hag_conformance: bool = False
    modulation: int = 0  # M: 0 FM0, 1 M2, 2 M4, 3 M8
    forward_link_modulation: int = 2  # 0 PR-ASK, 1 SSB-ASK, 2 DSB-ASK
    spectral_mask: int = 2  # 0 unknown, 1 single, 2 multi, 3 dense
    bdr_bps: int = 640_000
    pie: int = 1500  # ×1000
    min_tari_ns: int = 6250
    max_tari_ns: int = 6250
    step_tari_ns: int = 0
    TYPE: ClassVar[int] = 329
    WIRE: ClassVar[Wire] = (
        Field("mode_id", "u32", "ModeIdentifier"),
        Flags("flags", "u8", (("dr", 7), ("epc_hag_conformance", 6)), ints=frozenset({"dr"})),
        Field("modulation", "u8", "M"),
        Field("forward_link_modulation", "u8", "ForwardLinkModulation"),
        Field("spectral_mask", "u8", "SpectralMaskIndicator"),
        Field("bdr_bps", "u32", "BDRValue"),
        Field("pie", "u32", "PIEValue"),
        Field("min_tari_ns", "u32", "MinTariValue"),
        Field("max_tari_ns", "u32", "MaxTariValue"),
        Field("step_tari_ns", "u32", "StepTariValue"),
    )


@register
@dataclass(frozen=True, slots=True)
class UHFC1G2RFModeTable(Parameter):
    entries: tuple[UHFC1G2RFModeTableEntry, ...]
    TYPE: ClassVar[int] = 328
    WIRE: ClassVar[Wire] = (Sub("entries", UHFC1G2RFModeTableEntry, "many"),)


@register
@dataclass(frozen=True, slots=True)
class UHFBandCapabilities(Parameter):
    power_levels: tuple[TransmitPowerLevelTableEntry, ...]
    frequency: FrequencyInformation
    mode_table: UHFC1G2RFModeTable
    other: tuple[Parameter, ...] = ()
    TYPE: ClassVar[int] = 144
    WIRE: ClassVar[Wire] = (
        Sub("power_levels", TransmitPowerLevelTableEntry, "many"),
        Sub("frequency", FrequencyInformation, "req"),
        Sub("mode_table", UHFC1G2RFModeTable, "req"),
        Rest(),
    )


@register
@dataclass(frozen=True, slots=True)
class RegulatoryCapabilities(Parameter):
    country_code: int  # ISO 3166 numeric
    communications_standard: int  # 1 = US FCC Part 15, 2 = ETSI 302 208
    uhf_band: UHFBandCapabilities | None = None
    other: tuple[Parameter, ...] = ()
    TYPE: ClassVar[int] = 143
    WIRE: ClassVar[Wire] = (
        Field("country_code", "u16", "CountryCode"),
        Field("communications_standard", "u16", "CommunicationsStandard"),
        Sub("uhf_band", UHFBandCapabilities),
        Rest(),
    )


@register
@dataclass(frozen=True, slots=True)
class C1G2LLRPCapabilities(Parameter):
    """The AirProtocolLLRPCapabilities choice for Gen2 (the choice itself has no type number)."""

    can_block_erase: bool = False
    can_block_write: bool = False
    max_select_filters_per_query: int = 2
    TYPE: ClassVar[int] = 327
    WIRE: ClassVar[Wire] = (
        Flags("flags", "u8", (("can_block_erase", 7), ("can_block_write", 6))),
        Field("max_select_filters_per_query", "u16", "MaxNumSelectFiltersPerQuery"),
    )
