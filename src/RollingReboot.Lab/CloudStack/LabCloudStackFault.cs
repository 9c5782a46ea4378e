namespace RollingReboot.Lab.CloudStack;

/// <summary>A misbehaviour of the simulated CloudStack, from the scenario's <c>faults</c>.</summary>
public abstract record LabCloudStackFault;

/// <summary>
/// <c>{"type":"cloudstackError","command":CMD,"times":N,"errorCode":530}</c>: the next <paramref name="Times"/> calls of
/// <paramref name="Command"/> (matched ignoring case) fail with that error code, after their signature was checked.
/// </summary>
public sealed record CloudStackErrorFault(string Command, int Times, int ErrorCode = 530) : LabCloudStackFault;

/// <summary>
/// <c>{"type":"unmanageFails"}</c>: on updateCluster managedstate=Unmanaged the hosts stay Up, and after CloudStack's
/// ~200 s of polling the cluster ends PrepareUnmanagedError and the call fails with 530 "PrepareUnmanaged Failed".
/// </summary>
public sealed record UnmanageFailsFault : LabCloudStackFault;

/// <summary>
/// <c>{"type":"cloudstackStaleVm","vm":NAME}</c>: CloudStack keeps showing the VM Running on the host it ran on when the
/// lab started, wherever XAPI moves it (its host's power report about it is lost), as VirtualMachinePowerStateSyncImpl
/// can leave a VM until a later report.
/// </summary>
public sealed record CloudStackStaleVmFault(string Vm) : LabCloudStackFault;
