"""Latent-space interpretation with space-filling VQ on models trained here.

- :mod:`.logmel`: 80-band log-mel front end (torch, no torchaudio);
- :mod:`.alignment`: PocketSphinx forced alignment and the phone groups of [vali2023sfvq] §4;
- :mod:`.speech_vqvae`: a small speaker-conditioned speech VQ-VAE on log-mel frames;
- :mod:`.generative`: a Fashion-MNIST VAE whose latent passes a StyleGAN-like mapping network;
- :mod:`.purity`: how contiguous labels are along a codebook's index axis.

The reproductions are ``vqkit reproduce sfvq-phonetic`` and ``vqkit reproduce sfvq-generative``
(``docs/interpretation.md``).
"""
