/** LAPIC set-up: LINT0 delivers the 8259's ExtINT, LINT1 delivers NMIs, as on a PC (MP spec §5.1). */
import type { VcpuFd } from '../../../kvm/vcpu_fd.js';
import { APIC_MODE, APIC_REG, setLvtDeliveryMode } from '../../../generated/kvm_structs.js';

export function setupLint(vcpu: VcpuFd): void {
  const lapic = vcpu.getLapic();
  setLvtDeliveryMode(lapic, APIC_REG.LVT_LINT0, APIC_MODE.EXTINT);
  setLvtDeliveryMode(lapic, APIC_REG.LVT_LINT1, APIC_MODE.NMI);
  vcpu.setLapic(lapic);
}
