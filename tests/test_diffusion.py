import torch

from scripts.diffusion import predict_x0, pure_noise, q_sample, sample_timesteps


def test_schedule_is_the_papers_linear_schedule(scheduler):
    betas = torch.linspace(1e-4, 0.02, 1000)
    assert torch.allclose(scheduler.alphas_cumprod, torch.cumprod(1 - betas, 0), atol=1e-6)


def test_q_sample_then_inverse_recovers_x0(scheduler):
    torch.manual_seed(0)
    x0 = torch.rand(6, 2, 8, 8) * 2 - 1
    noise = torch.randn_like(x0)
    timesteps = torch.tensor([0, 1, 100, 500, 900, 999])
    x_t = q_sample(scheduler, x0, noise, timesteps)
    a = scheduler.alphas_cumprod[timesteps].view(-1, 1, 1, 1)
    assert torch.allclose(x_t, a.sqrt() * x0 + (1 - a).sqrt() * noise, atol=1e-6)
    assert torch.allclose(predict_x0(scheduler, x_t, noise, timesteps), x0, atol=1e-3)
    # the wrong noise does not recover x0: the inverse really uses its input
    assert not torch.allclose(predict_x0(scheduler, x_t, torch.zeros_like(noise), timesteps), x0, atol=1e-2)


def test_pure_noise_is_noised_zeros(scheduler):
    timesteps = torch.tensor([0, 999])
    generator = torch.Generator().manual_seed(1)
    noise = pure_noise(scheduler, (2, 1, 64, 64), timesteps, torch.zeros(1), generator)
    expected_std = (1 - scheduler.alphas_cumprod[timesteps]).sqrt()
    assert torch.allclose(noise.flatten(1).std(1), expected_std, rtol=0.1)


def test_sample_timesteps_covers_range(scheduler):
    t = sample_timesteps(scheduler, 5000, "cpu")
    assert t.dtype == torch.long and t.min() >= 0 and t.max() <= 999 and t.unique().numel() > 900
