import type { Socket } from 'node:net';
import modbusSerial from 'modbus-serial';
import { SunSpecImage, type ModelSpec } from './image.js';

/**
 * A hybrid battery inverter that speaks SunSpec over Modbus TCP, for the demo and for tests: PV
 * strings, a battery with charge and discharge losses, a grid meter, and the storage controls of
 * model 124 (or DER model 704) obeyed the way inverters do, revert timer included.
 */

export type SimVariant = 'legacy' | 'der';

export interface SunSpecSimOptions {
  capacityWh: number;
  initialSocPct: number;
  maxChargeW: number;
  maxDischargeW: number;
  minReservePct: number;
  chargeEfficiency: number;
  dischargeEfficiency: number;
  /** `legacy`: models 1, 103, 160, 124, 203, 802. `der`: models 1, 701, 702, 704, 713, 714, 203. */
  variant: SimVariant;
  /** Unit ids that answer; others stay silent, like an absent device on a bus. */
  units: number[];
  base: number;
  serial: string;
}

export const DEFAULT_SIM: SunSpecSimOptions = {
  capacityWh: 10000,
  initialSocPct: 50,
  maxChargeW: 5000,
  maxDischargeW: 5000,
  minReservePct: 5,
  chargeEfficiency: 0.95,
  dischargeEfficiency: 0.95,
  variant: 'legacy',
  units: [1],
  base: 40000,
  serial: 'HFSIM0001',
};

// SunSpec enumerations the simulator writes
const CHA_ST = { OFF: 1, EMPTY: 2, DISCHARGING: 3, CHARGING: 4, FULL: 5, HOLDING: 6 } as const;
const INV_ST_MPPT = 4;
const STOR_CTL_CHARGE = 1;
const STOR_CTL_DISCHARGE = 2;

const legacyChain = (): ModelSpec[] => [{ id: 1 }, { id: 103 }, { id: 160, repeats: 2 }, { id: 124 }, { id: 203 }, { id: 802 }];
const derChain = (): ModelSpec[] => [{ id: 1 }, { id: 701 }, { id: 702 }, { id: 704 }, { id: 713 }, { id: 714, repeats: 2 }, { id: 203 }];

interface ServerLike {
  close(cb: (err: Error | null) => void): void;
  on(event: string, fn: (...args: unknown[]) => void): void;
  socks: Map<Socket, unknown>;
}

export class SunSpecInverterSim {
  readonly options: SunSpecSimOptions;
  readonly image: SunSpecImage;
  /** Stored energy (Wh). */
  socWh: number;
  /** Battery power (W), + = charging. */
  batteryW = 0;
  pvW = 0;
  /** Everything else in the house (W), + = it draws; the simulator covers it in auto mode. */
  houseW = 0;
  /** When true, nothing answers: requests time out (a device that went away). */
  silent = false;
  /** Registers that answer with an exception code instead of data. */
  readonly faults = new Map<number, number>();
  /** Every write the simulator accepted, oldest first: [address, words]. */
  readonly writes: { address: number; words: number[]; at: number }[] = [];
  private lastControlWrite: number;
  private gridImportWh = 0;
  private gridExportWh = 0;
  private acOutWh = 0;
  private pvWh = [0, 0];
  private server?: ServerLike;
  private readonly now: () => number;

  constructor(options: Partial<SunSpecSimOptions> = {}, now: () => number = Date.now) {
    this.options = { ...DEFAULT_SIM, ...options };
    this.now = now;
    this.lastControlWrite = now();
    const o = this.options;
    this.socWh = (o.initialSocPct / 100) * o.capacityWh;
    this.image = new SunSpecImage(o.variant === 'legacy' ? legacyChain() : derChain(), o.base);
    this.initStatic();
    this.refresh();
  }

  get socPct(): number {
    return (this.socWh / this.options.capacityWh) * 100;
  }

  private initStatic() {
    const img = this.image;
    const o = this.options;
    img.setRaw(1, 'Mn', 'homeflex');
    img.setRaw(1, 'Md', o.variant === 'legacy' ? 'SimHybrid-124' : 'SimHybrid-DER');
    img.setRaw(1, 'Vr', '1.0.0');
    img.setRaw(1, 'SN', o.serial);
    img.setRaw(1, 'DA', o.units[0] ?? 1);
    // meter scale factors: W in W, energy in Wh, volts in 0.1 V, hertz in 0.01 Hz
    for (const [p, v] of [['A_SF', -2], ['V_SF', -1], ['Hz_SF', -2], ['W_SF', 0], ['VA_SF', 0], ['VAR_SF', 0], ['PF_SF', -2], ['TotWh_SF', 0]] as const) img.setRaw(203, p, v);
    img.set(203, 'Hz', 50);
    img.set(203, 'PhV', 230);
    img.set(203, 'PhVphA', 230);
    img.set(203, 'PhVphB', 230);
    img.set(203, 'PhVphC', 230);
    img.set(203, 'PPV', 400);
    img.set(203, 'PhVphAB', 400);
    img.set(203, 'PhVphBC', 400);
    img.set(203, 'PhVphCA', 400);
    img.setRaw(203, 'Evt', 0);
    if (o.variant === 'legacy') {
      for (const [p, v] of [['A_SF', -2], ['V_SF', -1], ['W_SF', 0], ['Hz_SF', -2], ['WH_SF', 0], ['DCA_SF', -2], ['DCV_SF', -1], ['DCW_SF', 0], ['Tmp_SF', -1]] as const) img.setRaw(103, p, v);
      img.set(103, 'PhVphA', 230);
      img.set(103, 'PhVphB', 230);
      img.set(103, 'PhVphC', 230);
      img.set(103, 'Hz', 50);
      img.set(103, 'TmpCab', 35);
      img.setRaw(103, 'Evt1', 0);
      img.setRaw(103, 'Evt2', 0);
      for (const [p, v] of [['DCA_SF', -2], ['DCV_SF', -1], ['DCW_SF', 0], ['DCWH_SF', 0]] as const) img.setRaw(160, p, v);
      img.setRaw(160, 'N', 2);
      img.setRaw(160, 'Evt', 0);
      for (let i = 0; i < 2; i++) {
        img.setRaw(160, `module[${i}].ID`, i + 1);
        img.setRaw(160, `module[${i}].IDStr`, `PV ${i + 1}`);
      }
      // storage controls: WChaMax in W, rates in 0.01 %, SoC in 0.1 %
      for (const [p, v] of [['WChaMax_SF', 0], ['WChaDisChaGra_SF', 0], ['MinRsvPct_SF', -1], ['ChaState_SF', -1], ['InBatV_SF', -1], ['InOutWRte_SF', -2], ['StorAval_SF', -2]] as const) img.setRaw(124, p, v);
      img.set(124, 'WChaMax', o.maxChargeW);
      img.set(124, 'WChaGra', 100);
      img.set(124, 'WDisChaGra', 100);
      img.setRaw(124, 'StorCtl_Mod', 0);
      img.set(124, 'MinRsvPct', o.minReservePct);
      img.set(124, 'InWRte', 100);
      img.set(124, 'OutWRte', 100);
      img.setRaw(124, 'InOutWRte_RvrtTms', 0);
      img.setRaw(124, 'InOutWRte_WinTms', 0);
      img.setRaw(124, 'InOutWRte_RmpTms', 0);
      img.setRaw(124, 'ChaGriSet', 1);
      img.set(124, 'InBatV', 400);
      for (const [p, v] of [['AHRtg_SF', 0], ['WHRtg_SF', 0], ['WChaDisChaMax_SF', 0], ['SoC_SF', -1], ['DoD_SF', -1], ['SoH_SF', 0], ['V_SF', -1], ['CellV_SF', -3], ['A_SF', -1], ['AMax_SF', 0], ['W_SF', 0]] as const) img.setRaw(802, p, v);
      img.set(802, 'AHRtg', Math.round(o.capacityWh / 400));
      img.set(802, 'WHRtg', o.capacityWh);
      img.set(802, 'WChaRteMax', o.maxChargeW);
      img.set(802, 'WDisChaRteMax', o.maxDischargeW);
      img.set(802, 'SoCMax', 100);
      img.set(802, 'SoCMin', 0);
      img.set(802, 'SoCRsvMin', o.minReservePct);
      img.set(802, 'SoH', 100);
      img.setRaw(802, 'LocRemCtl', 0);
      img.setRaw(802, 'Typ', 4);
      img.setRaw(802, 'State', 3);
      img.setRaw(802, 'SetOp', 1);
      img.setRaw(802, 'SetInvState', 3);
      img.setRaw(802, 'AlmRst', 0);
      for (const p of ['Evt1', 'Evt2', 'EvtVnd1', 'EvtVnd2']) img.setRaw(802, p, 0);
      img.set(802, 'V', 400);
      img.set(802, 'CellVMax', 3.3);
      img.set(802, 'CellVMin', 3.3);
      img.set(802, 'CellVAvg', 3.3);
    } else {
      for (const [p, v] of [['A_SF', -2], ['V_SF', -1], ['Hz_SF', -2], ['W_SF', 0], ['PF_SF', -2], ['VA_SF', 0], ['Var_SF', 0], ['TotWh_SF', 0], ['TotVarh_SF', 0], ['Tmp_SF', -1]] as const) img.setRaw(701, p, v);
      img.setRaw(701, 'ACType', 2);
      img.setRaw(701, 'St', 1);
      img.setRaw(701, 'InvSt', 3);
      img.setRaw(701, 'ConnSt', 1);
      img.set(701, 'Hz', 50);
      img.set(701, 'LNV', 230);
      for (const [p, v] of [['W_SF', 0], ['PF_SF', -2], ['VA_SF', 0], ['Var_SF', 0], ['V_SF', -1], ['A_SF', -1], ['S_SF', 0]] as const) img.setRaw(702, p, v);
      img.set(702, 'WMaxRtg', Math.max(o.maxChargeW, o.maxDischargeW));
      img.set(702, 'WChaRteMaxRtg', o.maxChargeW);
      img.set(702, 'WDisChaRteMaxRtg', o.maxDischargeW);
      img.set(702, 'WMax', Math.max(o.maxChargeW, o.maxDischargeW));
      img.set(702, 'WChaRteMax', o.maxChargeW);
      img.set(702, 'WDisChaRteMax', o.maxDischargeW);
      for (const [p, v] of [['PF_SF', -2], ['WMaxLimPct_SF', 0], ['WSet_SF', 0], ['WSetPct_SF', 0], ['VarSet_SF', 0], ['VarSetPct_SF', 0]] as const) img.setRaw(704, p, v);
      img.setRaw(704, 'WSetEna', 0);
      img.setRaw(704, 'WSetMod', 1);
      img.set(704, 'WSet', 0);
      img.setRaw(704, 'WSetRvrtTms', 0);
      img.setRaw(704, 'WMaxLimPctEna', 0);
      for (const [p, v] of [['WH_SF', 0], ['Pct_SF', -1]] as const) img.setRaw(713, p, v);
      img.set(713, 'WHRtg', o.capacityWh);
      img.set(713, 'SoH', 100);
      img.setRaw(713, 'Sta', 0);
      for (const [p, v] of [['DCA_SF', -2], ['DCV_SF', -1], ['DCW_SF', 0], ['DCWH_SF', 0], ['Tmp_SF', -1]] as const) img.setRaw(714, p, v);
      img.setRaw(714, 'NPrt', 2);
      img.setRaw(714, 'Prt[0].PrtTyp', 0);
      img.setRaw(714, 'Prt[0].ID', 1);
      img.setRaw(714, 'Prt[0].IDStr', 'PV');
      img.setRaw(714, 'Prt[1].PrtTyp', 1);
      img.setRaw(714, 'Prt[1].ID', 2);
      img.setRaw(714, 'Prt[1].IDStr', 'Battery');
    }
  }

  /** The battery power the controls allow right now (W, + = charging), before SoC limits. */
  private controlledBatteryW(): number {
    const o = this.options;
    const img = this.image;
    const surplus = this.pvW - this.houseW;
    const selfConsumption = Math.max(-o.maxDischargeW, Math.min(o.maxChargeW, surplus));
    if (o.variant === 'der') {
      if (img.getRaw(704, 'WSetEna') !== 1) return selfConsumption;
      // WSet is the AC output; the battery makes up the difference to the PV power
      const wset = img.get(704, 'WSet') ?? 0;
      return Math.max(-o.maxDischargeW, Math.min(o.maxChargeW, this.pvW - wset));
    }
    const mod = img.getRaw(124, 'StorCtl_Mod') ?? 0;
    const wChaMax = img.get(124, 'WChaMax') ?? o.maxChargeW;
    let hi = o.maxChargeW;
    let lo = -o.maxDischargeW;
    if (mod & STOR_CTL_CHARGE) hi = ((img.get(124, 'InWRte') ?? 100) / 100) * wChaMax;
    if (mod & STOR_CTL_DISCHARGE) lo = -((img.get(124, 'OutWRte') ?? 100) / 100) * wChaMax;
    let w = Math.min(Math.max(selfConsumption, lo), hi);
    // charging from the grid only when ChaGriSet allows it (PV = 0)
    if (w > 0 && img.getRaw(124, 'ChaGriSet') === 0) w = Math.min(w, Math.max(0, surplus));
    return Math.max(-o.maxDischargeW, Math.min(o.maxChargeW, w));
  }

  /** Reverts controls whose revert timer ran out, as model 124 (InOutWRte_RvrtTms) and 704 (WSetRvrtTms) define. */
  private applyRevert() {
    const img = this.image;
    const elapsedS = (this.now() - this.lastControlWrite) / 1000;
    if (this.options.variant === 'legacy') {
      const rvrt = img.getRaw(124, 'InOutWRte_RvrtTms') ?? 0;
      if (rvrt > 0 && elapsedS >= rvrt && (img.getRaw(124, 'StorCtl_Mod') ?? 0) !== 0) {
        img.setRaw(124, 'StorCtl_Mod', 0);
        img.set(124, 'InWRte', 100);
        img.set(124, 'OutWRte', 100);
      }
    } else {
      const rvrt = img.getRaw(704, 'WSetRvrtTms') ?? 0;
      if (rvrt > 0 && elapsedS >= rvrt && img.getRaw(704, 'WSetEna') === 1) img.setRaw(704, 'WSetEna', 0);
    }
  }

  /**
   * Advances the physics by `dtMs`: energy flows at the powers held during the step, then the new
   * PV and house powers apply and the controls pick the battery power.
   */
  step(dtMs: number, next: { pvW?: number; houseW?: number } = {}) {
    const o = this.options;
    if (dtMs > 0) {
      const h = dtMs / 3_600_000;
      if (this.batteryW > 0) this.socWh = Math.min(o.capacityWh, this.socWh + this.batteryW * h * o.chargeEfficiency);
      else this.socWh = Math.max(0, this.socWh + (this.batteryW * h) / o.dischargeEfficiency);
      const acW = this.pvW - this.batteryW;
      if (acW > 0) this.acOutWh += acW * h;
      const gridW = this.houseW - acW;
      if (gridW > 0) this.gridImportWh += gridW * h;
      else this.gridExportWh += -gridW * h;
      this.pvWh[0] += (this.pvW / 2) * h;
      this.pvWh[1] += (this.pvW / 2) * h;
    }
    if (next.pvW !== undefined) this.pvW = next.pvW;
    if (next.houseW !== undefined) this.houseW = next.houseW;
    this.applyRevert();
    let w = this.controlledBatteryW();
    if (w > 0 && this.socWh >= o.capacityWh - 1e-6) w = 0;
    if (w < 0 && this.socPct <= o.minReservePct) w = 0;
    this.batteryW = Math.round(w) || 0;
    this.refresh();
  }

  /** Writes the measurements into the registers. */
  refresh() {
    const img = this.image;
    const o = this.options;
    const acW = this.pvW - this.batteryW;
    const gridW = this.houseW - acW;
    const soc = Math.round(this.socPct * 10) / 10;
    img.set(203, 'W', Math.round(gridW));
    img.set(203, 'WphA', Math.round(gridW / 3));
    img.set(203, 'WphB', Math.round(gridW / 3));
    img.set(203, 'WphC', Math.round(gridW - 2 * Math.round(gridW / 3)));
    img.set(203, 'A', Math.abs(gridW) / 230);
    img.set(203, 'AphA', Math.abs(gridW) / 690);
    img.set(203, 'AphB', Math.abs(gridW) / 690);
    img.set(203, 'AphC', Math.abs(gridW) / 690);
    img.set(203, 'TotWhImp', Math.max(1, Math.round(this.gridImportWh)));
    img.set(203, 'TotWhExp', Math.max(1, Math.round(this.gridExportWh)));
    const chaSt = this.batteryW > 0 ? CHA_ST.CHARGING : this.batteryW < 0 ? CHA_ST.DISCHARGING : this.socWh >= o.capacityWh ? CHA_ST.FULL : this.socPct <= o.minReservePct ? CHA_ST.EMPTY : CHA_ST.HOLDING;
    if (o.variant === 'legacy') {
      img.set(103, 'W', Math.round(acW));
      img.set(103, 'A', Math.abs(acW) / 230);
      img.set(103, 'AphA', Math.abs(acW) / 690);
      img.set(103, 'AphB', Math.abs(acW) / 690);
      img.set(103, 'AphC', Math.abs(acW) / 690);
      img.set(103, 'WH', Math.max(1, Math.round(this.acOutWh)));
      img.set(103, 'DCW', Math.round(this.pvW - this.batteryW));
      img.setRaw(103, 'St', INV_ST_MPPT);
      for (let i = 0; i < 2; i++) {
        img.set(160, `module[${i}].DCW`, Math.round(this.pvW / 2));
        img.set(160, `module[${i}].DCV`, this.pvW > 0 ? 350 : 0);
        img.set(160, `module[${i}].DCA`, this.pvW / 2 / 350);
        img.set(160, `module[${i}].DCWH`, Math.max(1, Math.round(this.pvWh[i])));
        img.setRaw(160, `module[${i}].DCSt`, this.pvW > 0 ? INV_ST_MPPT : 2);
      }
      img.set(124, 'ChaState', soc);
      img.set(124, 'StorAval', Math.max(0, ((soc - o.minReservePct) / 100) * (o.capacityWh / 400)));
      img.setRaw(124, 'ChaSt', chaSt);
      img.set(802, 'SoC', soc);
      img.set(802, 'DoD', 100 - soc);
      // DER convention: power out of the battery is positive
      img.set(802, 'W', -this.batteryW);
      img.set(802, 'A', -this.batteryW / 400);
      img.setRaw(802, 'ChaSt', chaSt);
    } else {
      img.set(701, 'W', Math.round(acW));
      img.set(701, 'A', Math.abs(acW) / 230);
      img.set(701, 'TotWhInj', Math.max(1, Math.round(this.acOutWh)));
      img.set(713, 'SoC', soc);
      img.set(713, 'WHAvail', Math.round((this.socWh)));
      img.set(714, 'Prt[0].DCW', Math.round(this.pvW));
      img.set(714, 'Prt[0].DCWhInj', Math.max(1, Math.round(this.pvWh[0] + this.pvWh[1])));
      img.set(714, 'Prt[1].DCW', -this.batteryW);
    }
  }

  // ------------------------------------------------------------------ Modbus side

  /** Registers for a read, or an exception code. */
  readRegisters(unit: number, address: number, count: number): number[] | { exception: number } | 'silent' {
    if (this.silent || !this.options.units.includes(unit)) return 'silent';
    for (let i = 0; i < count; i++) {
      const code = this.faults.get(address + i);
      if (code !== undefined) return { exception: code };
    }
    return this.image.read(address, count) ?? { exception: 2 };
  }

  /** Applies a write of whole points, or answers with an exception code as an inverter would. */
  writeRegisters(unit: number, address: number, words: number[]): { exception: number } | 'silent' | 'ok' {
    if (this.silent || !this.options.units.includes(unit)) return 'silent';
    const img = this.image;
    for (let i = 0; i < words.length; i++) {
      const at = img.pointAt(address + i);
      if (!at || !at.layout.def.rw) return { exception: 2 };
      if (this.faults.has(address + i)) return { exception: this.faults.get(address + i)! };
    }
    const backup = words.map((_, i) => img.words.get(address + i)!);
    words.forEach((w, i) => img.words.set(address + i, w));
    if (!this.valid()) {
      backup.forEach((w, i) => img.words.set(address + i, w));
      return { exception: 3 };
    }
    this.writes.push({ address, words: [...words], at: this.now() });
    this.lastControlWrite = this.now();
    return 'ok';
  }

  /** Values an inverter would refuse (exception 3, ILLEGAL DATA VALUE). */
  private valid(): boolean {
    const img = this.image;
    if (this.options.variant === 'legacy') {
      const mod = img.getRaw(124, 'StorCtl_Mod');
      if (mod !== undefined && mod > 3) return false;
      for (const p of ['InWRte', 'OutWRte']) {
        const v = img.get(124, p);
        if (v !== undefined && (v < -100 || v > 100)) return false;
      }
      const g = img.getRaw(124, 'ChaGriSet');
      if (g !== undefined && g > 1) return false;
      return true;
    }
    const ena = img.getRaw(704, 'WSetEna');
    return ena === undefined || ena <= 1;
  }

  /** Serves the map on Modbus TCP; resolves with the port (pass 0 for a free one). */
  async listen(port = 0, host = '127.0.0.1'): Promise<number> {
    const reply = (r: number[] | { exception: number } | 'silent', cb: (err: unknown, v?: unknown) => void, single = false) => {
      if (r === 'silent') return; // no answer at all: the client times out
      // an empty array with the error: modbus-serial's FC4 path indexes the values even on errors
      if (!Array.isArray(r)) return cb({ modbusErrorCode: r.exception }, single ? undefined : []);
      cb(null, single ? r[0] : r);
    };
    const vector = {
      getHoldingRegister: (addr: number, unit: number, cb: (err: unknown, v?: unknown) => void) => reply(this.readRegisters(unit, addr, 1), cb, true),
      getMultipleHoldingRegisters: (addr: number, len: number, unit: number, cb: (err: unknown, v?: unknown) => void) => reply(this.readRegisters(unit, addr, len), cb),
      getInputRegister: (_addr: number, unit: number, cb: (err: unknown, v?: unknown) => void) => reply(this.silent || !this.options.units.includes(unit) ? 'silent' : { exception: 2 }, cb),
      getMultipleInputRegisters: (_addr: number, _len: number, unit: number, cb: (err: unknown, v?: unknown) => void) => reply(this.silent || !this.options.units.includes(unit) ? 'silent' : { exception: 2 }, cb),
      setRegisterArray: (addr: number, values: number[], unit: number, cb: (err: unknown) => void) => {
        const r = this.writeRegisters(unit, addr, values);
        if (r === 'silent') return;
        if (r !== 'ok') return cb({ modbusErrorCode: r.exception });
        cb(null);
      },
      setRegister: (addr: number, value: number, unit: number, cb: (err: unknown) => void) => {
        const r = this.writeRegisters(unit, addr, [value]);
        if (r === 'silent') return;
        if (r !== 'ok') return cb({ modbusErrorCode: r.exception });
        cb(null);
      },
    };
    // ServerTCP treats port 0 as "use 502"; the string '0' reaches net.listen as a free port
    const server = new modbusSerial.ServerTCP(vector as unknown as ConstructorParameters<typeof modbusSerial.ServerTCP>[0], { host, port: (port || '0') as unknown as number, unitID: 255 }) as unknown as ServerLike & { _server: { address(): { port: number } } };
    await new Promise<void>((resolve, reject) => {
      server.on('initialized', () => resolve());
      server.on('serverError', (err) => reject(err as Error));
      server.on('error', (err) => reject(err as Error));
    });
    server.on('socketError', () => undefined);
    this.server = server;
    return server._server.address().port;
  }

  /** Stops serving and drops every open connection (a power cut, as far as clients can tell). */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    for (const sock of server.socks.keys()) sock.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
