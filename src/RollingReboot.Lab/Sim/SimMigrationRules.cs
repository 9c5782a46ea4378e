namespace RollingReboot.Lab.Sim;

/// <summary>
/// Whether XAPI lets a VM live-migrate at all, whatever the target, as xapi-project/xen-api
/// ocaml/xapi/xapi_vm_lifecycle.ml check_operation_error decides for <c>pool_migrate</c> with strict=true, which is
/// what host.evacuate / get_vms_which_prevent_evacuation (xapi_host.ml) and VM.pool_migrate without force
/// (message_forwarding.ml, <c>~strict:(not force)</c>) use, and what VM.allowed_operations lists. Checks in XAPI's order:
/// immobile (platform nomigrate / nested-virt, is_mobile), the guest feature check (check_op_for_feature: a live VM that
/// did not boot PV and has no PV drivers needs <c>feature-suspend=1</c>; <c>data-cant-suspend-reason</c> refuses any
/// VM), passed-through PCI devices that are not NVIDIA SR-IOV vGPU functions (is_not_sriov), vGPUs that are not all
/// suspendable (check_vgpu: NVIDIA with gpumon compatibility metadata), USB devices. Target-dependent rules
/// (SRs, memory, host state) are VM.assert_can_boot_here's, elsewhere.
/// </summary>
internal static class SimMigrationRules
{
    public static string[]? Refusal(SimVm vm)
    {
        if (vm.IsControlDomain || !vm.IsRunning)
        {
            return null;
        }

        if (vm.Nomigrate || vm.NestedVirt)
        {
            return ["VM_IS_IMMOBILE", vm.Ref];
        }

        if (vm.CantSuspendReason is { } reason)
        {
            return ["VM_NON_SUSPENDABLE", vm.Ref, reason];
        }

        bool implicitSupport = vm.DomainType is "pv" or "pvh" or "pv_in_pvh" || vm.PvDrivers;
        if (!implicitSupport && !vm.FeatureSuspend)
        {
            return ["VM_LACKS_FEATURE", vm.Ref];
        }

        if (vm.Pci)
        {
            return ["VM_HAS_PCI_ATTACHED", vm.Ref];
        }

        if (vm.Vgpu && !vm.VgpuSuspendable)
        {
            return ["VM_HAS_VGPU", vm.Ref];
        }

        if (vm.Vusb)
        {
            return ["VM_HAS_VUSBS", vm.Ref];
        }

        return null;
    }
}
