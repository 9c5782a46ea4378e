namespace RollingReboot.CloudStack;

/// <summary>How <see cref="CloudStackClient"/> reaches and talks to the management server. Immutable.</summary>
public sealed class CloudStackClientOptions
{
    /// <summary>The API endpoint, e.g. <c>http://mgmt:8080/client/api</c> (a bare server URL gets <c>/client/api</c>).</summary>
    public required Uri Endpoint { get; init; }

    public required string ApiKey { get; init; }

    public required string SecretKey { get; init; }

    /// <summary>Bound on each read attempt (list*, queryAsyncJobResult).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Bound on updateCluster, which blocks on the server while it disconnects hosts (it polls them for up to
    /// ~200 s), so it needs far more than <see cref="Timeout"/>.
    /// </summary>
    public TimeSpan UpdateClusterTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// False accepts any TLS certificate (CloudMonkey's <c>verifycert = false</c>). Ignored when a handler is
    /// given to the client.
    /// </summary>
    public bool VerifyCertificate { get; init; } = true;

    /// <summary>Send a form POST instead of a GET (servers that enforce POST for changes).</summary>
    public bool UsePost { get; init; }

    /// <summary>Sign with <c>signatureversion=3</c> and an <c>expires</c> timestamp.</summary>
    public bool UseSignatureVersion3 { get; init; }

    /// <summary>How far ahead <c>expires</c> is set (servers that enforce it refuse more than 15 minutes).</summary>
    public TimeSpan Expiry { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Retries of a read after a connection failure, a timeout or a 5xx answer.</summary>
    public int RetryCount { get; init; } = 3;

    /// <summary>First delay between retries (then exponential).</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>How often state is re-read while waiting (cluster state, hosts, async jobs).</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Bound on waiting for an async job.</summary>
    public TimeSpan AsyncJobTimeout { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>Page size of list calls (CloudStack's default.page.size is 500).</summary>
    public int PageSize { get; init; } = 500;

    public static CloudStackClientOptions FromCredentials(CloudStackCredentials credentials)
    {
        ArgumentNullException.ThrowIfNull(credentials);
        return new CloudStackClientOptions
        {
            Endpoint = credentials.Endpoint,
            ApiKey = credentials.ApiKey,
            SecretKey = credentials.SecretKey,
            Timeout = credentials.Timeout ?? TimeSpan.FromSeconds(60),
            VerifyCertificate = credentials.VerifyCertificate,
        };
    }

    internal void Validate()
    {
        if (Endpoint is null || !Endpoint.IsAbsoluteUri || (Endpoint.Scheme != Uri.UriSchemeHttp && Endpoint.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException("The CloudStack endpoint must be an absolute http(s) URL.", nameof(Endpoint));
        }

        if (string.IsNullOrWhiteSpace(ApiKey))
        {
            throw new ArgumentException("The CloudStack API key is empty.", nameof(ApiKey));
        }

        if (string.IsNullOrWhiteSpace(SecretKey))
        {
            throw new ArgumentException("The CloudStack secret key is empty.", nameof(SecretKey));
        }

        RequirePositive(Timeout, nameof(Timeout));
        RequirePositive(UpdateClusterTimeout, nameof(UpdateClusterTimeout));
        RequirePositive(Expiry, nameof(Expiry));
        RequirePositive(AsyncJobTimeout, nameof(AsyncJobTimeout));
        ArgumentOutOfRangeException.ThrowIfNegative(RetryCount, nameof(RetryCount));
        ArgumentOutOfRangeException.ThrowIfLessThan(RetryDelay, TimeSpan.Zero, nameof(RetryDelay));
        ArgumentOutOfRangeException.ThrowIfLessThan(PollInterval, TimeSpan.Zero, nameof(PollInterval));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(PageSize, nameof(PageSize));
    }

    public override string ToString() =>
        $"CloudStack {CloudStackCredentials.DisplayUrl(Endpoint)} (apikey {CloudStackCredentials.Abbreviate(ApiKey)}, secret key hidden, " +
        $"timeout {Timeout}, {(UsePost ? "POST" : "GET")}{(UseSignatureVersion3 ? ", signature v3" : "")}{(VerifyCertificate ? "" : ", any TLS certificate")}, {RetryCount} retries)";

    private static void RequirePositive(TimeSpan value, string name)
    {
        // Polly's timeout strategy accepts 10 ms to one day.
        if (value < TimeSpan.FromMilliseconds(10) || value > TimeSpan.FromDays(1))
        {
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be between 10 ms and one day.");
        }
    }
}
